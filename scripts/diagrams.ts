/**
 * Generates Mermaid `stateDiagram-v2` diagrams of the state machines by walking their state nodes,
 * and rewrites machines/README.md with them. Run with `npm run diagrams`;
 * test/unit/diagrams.test.ts fails when the committed README is stale.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { LOGIN_MACHINE_VERSION, loginMachine } from '../machines/login.machine.ts';
import { RECOVERY_MACHINE_VERSION, recoveryMachine } from '../machines/recovery.machine.ts';
import { MFA_MACHINE_VERSION, mfaMachine } from '../machines/mfa.machine.ts';
import { SESSION_MACHINE_VERSION, sessionMachine } from '../machines/session.machine.ts';
import { REFRESH_MACHINE_VERSION, refreshMachine } from '../machines/refresh.machine.ts';
import { SIGNUP_MACHINE_VERSION, signupMachine } from '../machines/signup.machine.ts';

export const README_PATH = fileURLToPath(new URL('../machines/README.md', import.meta.url));

const INDENT = '    ';

/**
 * Words the Mermaid state-diagram lexer treats specially at the start of a statement
 * (`default` is matched case-insensitively as a prefix of any word).
 */
const RESERVED = new Set(['note', 'state', 'class', 'classdef', 'scale', 'direction', 'statediagram', 'end', 'style', 'hide']);

/** Mermaid entity codes: `:` and `;` end a label, `#` starts a comment. Rendered as the plain character. */
function escapeText(s: string): string {
  const codes: Record<string, string> = { '#': '#35;', ':': '#58;', ';': '#59;', '"': '#quot;' };
  return s
    .replace(/[\r\n]+/g, ' ')
    .replace(/[#:;"]/g, (c) => codes[c] as string)
    .trim();
}

function safeId(raw: string): string {
  let id = raw.replace(/[^A-Za-z0-9_]/g, '_') || 'state';
  if (RESERVED.has(id.toLowerCase()) || /^default/i.test(id)) id = `s_${id}`;
  return id;
}

/** A guard as written in the machine: its name, a combination of names, or `inline`. */
function guardName(guard: unknown): string | null {
  if (guard === undefined || guard === null) return null;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') {
    const g = guard as { name?: string; guards?: unknown[]; stateValue?: unknown; check?: unknown };
    if (typeof g.check === 'function') {
      const parts = (g.guards ?? []).map((x) => guardName(x) ?? 'inline');
      if (g.name === 'not') return `not ${wrap(parts[0] ?? 'inline')}`;
      if (g.name === 'and') return parts.map(wrap).join(' and ');
      if (g.name === 'or') return parts.map(wrap).join(' or ');
      if (g.name === 'stateIn') return `in(${typeof g.stateValue === 'string' ? g.stateValue : JSON.stringify(g.stateValue)})`;
    }
    return 'inline';
  }
  if (typeof guard === 'object' && typeof (guard as { type?: unknown }).type === 'string') {
    return (guard as { type: string }).type;
  }
  return 'inline';
}

const wrap = (s: string) => (/\s/.test(s) ? `(${s})` : s);

/** The name of the actor an invocation runs: its `src`, or the invoke id for inline logic. */
function invokedName(node: AnyStateNode, invokeId: string): string {
  const inv = node.invoke.find((i) => i.id === invokeId);
  if (!inv) return invokeId;
  if (typeof inv.src === 'string' && !inv.src.startsWith('xstate.invoke.')) return inv.src;
  // Inline actor logic: XState names it after the state; a configured id is the better name.
  return /^\d+\./.test(inv.id) ? 'inline actor' : inv.id;
}

/** A readable label for the event that triggers a transition defined on `node`. */
function eventLabel(node: AnyStateNode, eventType: string): string {
  if (eventType === '') return 'always';
  if (eventType.startsWith('xstate.after.')) {
    const delayed = node.after.find((t) => t.eventType === eventType);
    const delay = delayed?.delay;
    if (typeof delay === 'number') return `after ${delay}ms`;
    if (typeof delay === 'string') return `after ${delay}`;
    return 'after (inline delay)';
  }
  for (const [prefix, word] of [
    ['xstate.done.actor.', 'done'],
    ['xstate.error.actor.', 'error'],
    ['xstate.snapshot.', 'snapshot'],
  ] as const) {
    if (eventType.startsWith(prefix)) return `${word}: ${invokedName(node, eventType.slice(prefix.length))}`;
  }
  if (eventType.startsWith('xstate.done.state.')) return 'done';
  return eventType;
}

interface Edge {
  from: string;
  to: string;
  label: string;
}

/** Renders one machine as a Mermaid `stateDiagram-v2` (without the surrounding code fence). */
export function toMermaid(machine: AnyStateMachine): string {
  const root = machine.root as AnyStateNode;
  const ids = new Map<AnyStateNode, string>();
  const taken = new Set<string>();
  const allocate = (base: string) => {
    let id = base;
    for (let n = 2; taken.has(id); n++) id = `${base}_${n}`;
    taken.add(id);
    return id;
  };
  const children = (n: AnyStateNode) => Object.values(n.states) as AnyStateNode[];
  const isComposite = (n: AnyStateNode) => n.type === 'compound' || n.type === 'parallel';

  const assignIds = (n: AnyStateNode) => {
    for (const c of children(n)) {
      ids.set(c, allocate(safeId(c.path.join('_'))));
      assignIds(c);
    }
  };
  assignIds(root);

  // A transition defined on a composite state that stays inside it (or has no target) applies in
  // any of its states; Mermaid cannot draw an edge from a composite into itself, so such
  // transitions start from an "any state" node inside the composite.
  const anyIds = new Map<AnyStateNode, string>();
  const anyId = (n: AnyStateNode) => {
    let id = anyIds.get(n);
    if (!id) {
      id = allocate(safeId(n === root ? 'any_state' : `${ids.get(n)}_any_state`));
      anyIds.set(n, id);
    }
    return id;
  };

  const isWithin = (n: AnyStateNode, ancestor: AnyStateNode) => {
    for (let p: AnyStateNode | undefined = n; p; p = p.parent) if (p === ancestor) return true;
    return false;
  };

  /**
   * Edges are written inside the block of the composite state whose direct children they join
   * (Mermaid moves the ends of an edge into the block it is written in); every other edge is
   * written at the top level, after all blocks, where it does not move its ends.
   */
  const edges = new Map<AnyStateNode, Edge[]>();
  const addEdge = (scope: AnyStateNode, e: Edge) => {
    const list = edges.get(scope) ?? [];
    if (!list.some((x) => x.from === e.from && x.to === e.to && x.label === e.label)) list.push(e);
    edges.set(scope, list);
  };

  const collect = (n: AnyStateNode) => {
    const transitions = [...n.transitions.values()].flat().concat(n.always ?? []);
    for (const t of transitions) {
      const guard = guardName(t.guard);
      const event = eventLabel(n, String(t.eventType));
      const label = guard ? `${event} [${guard}]` : event;
      const targets = t.target && t.target.length > 0 ? [...t.target] : [null];
      for (const target of targets) {
        const inner = isComposite(n) && (target === null || isWithin(target, n));
        const from = inner ? anyId(n) : (ids.get(n) as string);
        const fromParent = inner ? n : n.parent;
        const to = target === null ? from : target === n && inner ? from : (ids.get(target) as string);
        const toParent = target === null || (target === n && inner) ? fromParent : target.parent;
        const scope = fromParent && fromParent === toParent && fromParent.type !== 'parallel' ? fromParent : root;
        addEdge(scope, { from, to, label });
      }
    }
    for (const c of children(n)) collect(c);
  };
  collect(root);

  const lines: string[] = ['stateDiagram-v2'];
  const edgeLine = (e: Edge) => `${e.from} --> ${e.to} : ${escapeText(e.label)}`;

  const block = (n: AnyStateNode, depth: number) => {
    const pad = INDENT.repeat(depth);
    if (n.type === 'compound') {
      const initial = n.initial?.target?.[0];
      if (initial) lines.push(`${pad}[*] --> ${ids.get(initial)}`);
    }
    const any = anyIds.get(n);
    if (any) lines.push(`${pad}state "any state" as ${any}`);
    children(n).forEach((c, i) => {
      if (n.type === 'parallel' && i > 0) lines.push(`${pad}--`);
      const id = ids.get(c) as string;
      const tags = [...c.tags];
      if (isComposite(c)) {
        const suffix = [c.type === 'parallel' ? 'parallel' : '', ...tags].filter(Boolean).join(', ');
        const label = suffix ? `${c.key} (${suffix})` : c.key;
        lines.push(label === id ? `${pad}state ${id} {` : `${pad}state "${escapeText(label)}" as ${id} {`);
        block(c, depth + 1);
        lines.push(`${pad}}`);
      } else {
        const label = c.type === 'history' ? `${c.key} (history)` : c.key;
        lines.push(label === id ? `${pad}${id}` : `${pad}state "${escapeText(label)}" as ${id}`);
        if (tags.length > 0) lines.push(`${pad}note right of ${id} : ${escapeText(tags.join(', '))}`);
      }
    });
    for (const e of edges.get(n) ?? []) lines.push(pad + edgeLine(e));
    for (const c of children(n)) if (c.type === 'final') lines.push(`${pad}${ids.get(c)} --> [*]`);
  };
  block(root, 1);
  return lines.join('\n') + '\n';
}

interface DocumentedMachine {
  title: string;
  file: string;
  exportName: string;
  versionName: string;
  version: number;
  machine: AnyStateMachine;
}

const MACHINES: DocumentedMachine[] = [
  {
    title: 'Login',
    file: 'login.machine.ts',
    exportName: 'loginMachine',
    versionName: 'LOGIN_MACHINE_VERSION',
    version: LOGIN_MACHINE_VERSION,
    machine: loginMachine,
  },
  {
    title: 'MFA challenge',
    file: 'mfa.machine.ts',
    exportName: 'mfaMachine',
    versionName: 'MFA_MACHINE_VERSION',
    version: MFA_MACHINE_VERSION,
    machine: mfaMachine,
  },
  {
    title: 'Account recovery',
    file: 'recovery.machine.ts',
    exportName: 'recoveryMachine',
    versionName: 'RECOVERY_MACHINE_VERSION',
    version: RECOVERY_MACHINE_VERSION,
    machine: recoveryMachine,
  },
  {
    title: 'Session lifecycle',
    file: 'session.machine.ts',
    exportName: 'sessionMachine',
    versionName: 'SESSION_MACHINE_VERSION',
    version: SESSION_MACHINE_VERSION,
    machine: sessionMachine,
  },
  {
    title: 'Refresh-token rotation',
    file: 'refresh.machine.ts',
    exportName: 'refreshMachine',
    versionName: 'REFRESH_MACHINE_VERSION',
    version: REFRESH_MACHINE_VERSION,
    machine: refreshMachine,
  },
  {
    title: 'Sign-up and email verification',
    file: 'signup.machine.ts',
    exportName: 'signupMachine',
    versionName: 'SIGNUP_MACHINE_VERSION',
    version: SIGNUP_MACHINE_VERSION,
    machine: signupMachine,
  },
];

const INTRO = `# State machines

The login flow is an explicit statechart. These files hold the machines themselves; the diagrams
below are generated from them.

- **Pure machines.** Each machine is built with XState's \`setup()\`, which declares its named actors,
  guards, actions and delays. The machine files import nothing from \`src/\`; the real
  implementations (password check, risk scoring, TOTP and recovery-code checks) are supplied from
  \`src/\` with \`.provide()\`, and tests provide fakes the same way.
- **Resting states.** A flow rests between requests only in states that await input; those states are
  tagged \`awaitingInput\`. In the login machine, \`stepUp.challenging\` is tagged \`delegating\`: the
  flow rests there while the invoked \`mfa\` child machine awaits input, and the client's events
  (\`choose\`, \`totp\`, \`recovery_code\`) are forwarded to that child.
- **No persisted timers.** The risk deadline (\`after riskTimeout\`) is used only within one request:
  risk is assessed while the request that submitted the password is handled, and when the scorer
  does not answer in time the flow fails closed to step-up. Because flows rest only in states that
  await input, nothing depends on timers surviving persistence.
- **Side effects are events.** Transitions never touch the outside world; they emit events
  (\`login.failed\`, \`login.allowed\`, …) that the runtime applies after the flow is persisted.
  \`login.allowed\` is not yet a success: the login service decides the session first (ordered
  completion steps \`decideSession → tokens → recordSuccess → audit → notice\`), so a session the
  cap refuses ends the flow \`denied\` (\`SESSION_LIMIT_REACHED\`), never \`succeeded\`.
- **Steps are declared.** Every state carries \`meta: { step }\`, what the client is asked for;
  the presenter reads it (from the delegate, the MFA machine, while login delegates to it).
- **Errors are declared.** A state that refuses an event sets \`context.error\` (a registry code)
  beside its messages; the route answers with it.
- **Delegation.** A \`delegating\` state's invoked machine child is found by the runtime (any id).
- **Versions.** Bump \`LOGIN_MACHINE_VERSION\` / \`MFA_MACHINE_VERSION\` whenever behaviour changes;
  flows already under way keep the rules they started with. A login flow carries the MFA child's
  snapshot, so it is stored under \`LOGIN_FLOW_VERSION\`, which changes when either does.

## Reading the diagrams

- Edges are labelled with the event type, followed by \`[guard]\` when the transition is guarded
  (\`inline\` for an unnamed guard). Guarded alternatives for the same event are tried in order.
- \`always\` marks an eventless transition; \`after riskTimeout\` a delayed transition, named by its delay.
- \`done: actor\` / \`error: actor\` are the completion and failure of the actor invoked in that state
  (the source reads \`done#58; actor\`: \`#58;\` is Mermaid's escape for a colon, which would end a label).
- A loop on a state is a transition without a target: it only runs actions (for example forwarding
  an event to the invoked child).
- An "any state" node inside a composite state stands for a transition defined on the composite
  itself: it applies in whichever of its states the flow is.
- Notes list a state's tags.
`;

/** The full text of machines/README.md. */
export function renderReadme(): string {
  const sections = MACHINES.map(
    (m) => `## ${m.title}: \`${m.exportName}\` (\`${m.file}\`)

Version: \`${m.versionName} = ${m.version}\`

\`\`\`mermaid
${toMermaid(m.machine)}\`\`\`
`,
  );
  return `${INTRO}\n${sections.join('\n')}\nGenerated by \`npm run diagrams\`; do not edit by hand.\n`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(README_PATH, renderReadme());
  console.log(`Wrote ${README_PATH}`);
}
