import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { and, fromPromise, not, setup } from 'xstate';
import { loginMachine } from '../../machines/login.machine.ts';
import { mfaMachine } from '../../machines/mfa.machine.ts';
import { README_PATH, renderReadme, toMermaid } from '../../scripts/diagrams.ts';

/** Every state the diagram declares, by the label it shows (its key). */
function declaredStates(diagram: string): Set<string> {
  const names = new Set<string>();
  for (const line of diagram.split('\n').map((l) => l.trim())) {
    const aliased = /^state "([^"]+)" as \S+/.exec(line);
    const plain = /^state (\S+) \{$/.exec(line) ?? /^([A-Za-z0-9_]+)$/.exec(line);
    const name = aliased?.[1] ?? plain?.[1];
    if (name) names.add(name.replace(/ \(.*\)$/, ''));
  }
  return names;
}

/** Structural rules the Mermaid lexer imposes on every generated line. */
function expectWellFormed(diagram: string) {
  const lines = diagram.trimEnd().split('\n');
  expect(lines[0]).toBe('stateDiagram-v2');
  let depth = 0;
  for (const line of lines.slice(1).map((l) => l.trim())) {
    if (line.endsWith('{')) depth++;
    else if (line === '}') depth--;
    expect(depth).toBeGreaterThanOrEqual(0);
    const edge = /^(\S+) --> (\S+)(?: : (.*))?$/.exec(line);
    if (edge) {
      // A label ends at ':' or ';' and '#' starts a comment: they must be entity-escaped.
      expect((edge[3] ?? '').replace(/#(\d+|quot);/g, ''), line).not.toMatch(/[:;#]/);
      expect(edge[1], line).toMatch(/^([A-Za-z0-9_]+|\[\*\])$/);
      expect(edge[2], line).toMatch(/^([A-Za-z0-9_]+|\[\*\])$/);
    }
  }
  expect(depth).toBe(0);
}

describe('machines/README.md', () => {
  it('is up to date with the machines', () => {
    const committed = readFileSync(README_PATH, 'utf8').replace(/\r\n/g, '\n');
    expect(
      committed,
      'machines/README.md is stale: run `npm run diagrams` and commit the result',
    ).toBe(renderReadme());
  });
});

describe('toMermaid', () => {
  it('draws the login machine', () => {
    const d = toMermaid(loginMachine);
    expectWellFormed(d);
    const states = declaredStates(d);
    for (const s of [
      'awaitingPassword',
      'verifyingPassword',
      'assessingRisk',
      'deciding',
      'stepUp',
      'challenging',
      'allowed',
      'denied',
      'locked',
    ]) {
      expect(states, s).toContain(s);
    }
    expect(d).toMatch(/^\s*\[\*\] --> start$/m);
    expect(d).toMatch(/^\s*assessingRisk --> deciding : after riskTimeout$/m);
    expect(d).toMatch(/^\s*state stepUp \{$/m);
    expect(d).toMatch(/^\s*note right of awaitingPassword : awaitingInput$/m);
    expect(d).toMatch(/^\s*note right of stepUp_challenging : delegating$/m);
    expect(d).toMatch(/^\s*verifyingPassword --> assessingRisk : done#58; verifyPassword \[passwordOk\]$/m);
    for (const s of ['allowed', 'denied', 'locked']) expect(d).toMatch(new RegExp(`^\\s*${s} --> \\[\\*\\]$`, 'm'));
  });

  it('draws the MFA machine', () => {
    const d = toMermaid(mfaMachine);
    expectWellFormed(d);
    const states = declaredStates(d);
    for (const s of ['choosing', 'totp', 'verifyingTotp', 'recoveryCode', 'verified', 'locked']) {
      expect(states, s).toContain(s);
    }
    expect(d).toMatch(/^\s*\[\*\] --> choosing$/m);
    expect(d).toMatch(/^\s*verified --> \[\*\]$/m);
  });

  it('walks any machine generically', () => {
    const m = setup({
      guards: { ok: () => true, ready: () => true },
      delays: { grace: 1000 },
      actors: { fetchThing: fromPromise(async () => 1) },
    }).createMachine({
      id: 'sample',
      initial: 'idle',
      on: { reset: '.idle' },
      states: {
        idle: { tags: ['awaitingInput', 'resting'], on: { go: { target: 'work', guard: 'ok' } } },
        work: {
          initial: 'fetching',
          states: {
            fetching: {
              invoke: { src: 'fetchThing', onDone: 'checking', onError: '#sample.failed' },
              after: { grace: '#sample.failed', 500: 'checking' },
            },
            checking: { always: [{ guard: and(['ok', not('ready')]), target: 'finished' }, { target: 'finished' }] },
            finished: { type: 'final' },
          },
          onDone: 'done',
        },
        failed: { on: { retry: { target: 'work', guard: ({ context }) => context !== undefined } } },
        done: { type: 'final' },
      },
    });
    const d = toMermaid(m);
    expectWellFormed(d);
    expect(d).toContain('[*] --> idle');
    expect(d).toContain('note right of idle : awaitingInput, resting');
    expect(d).toContain('idle --> work : go [ok]');
    expect(d).toMatch(/state work \{\n\s+\[\*\] --> work_fetching\n/);
    expect(d).toContain('state "fetching" as work_fetching');
    expect(d).toContain('work_fetching --> work_checking : done#58; fetchThing');
    expect(d).toContain('work_fetching --> failed : error#58; fetchThing');
    expect(d).toContain('work_fetching --> failed : after grace');
    expect(d).toContain('work_fetching --> work_checking : after 500ms');
    expect(d).toContain('work_checking --> work_finished : always [ok and (not ready)]');
    expect(d).toContain('work_checking --> work_finished : always\n');
    expect(d).toContain('work_finished --> [*]');
    expect(d).toContain('work --> done : done');
    expect(d).toContain('failed --> work : retry [inline]');
    expect(d).toContain('any_state --> idle : reset');
    expect(d).toContain('done --> [*]');
    // Edges joining siblings of a composite are written inside its block; the rest at the top level.
    const inside = d.slice(d.indexOf('state work {'), d.indexOf('\n    }'));
    expect(inside).toContain('work_fetching --> work_checking');
    expect(inside).not.toContain('--> failed');
  });
});
