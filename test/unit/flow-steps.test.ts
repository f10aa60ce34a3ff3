import { describe, expect, it } from 'vitest';
import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { LOGIN_FLOW_VERSION, loginMachine } from '../../machines/login.machine.ts';
import { MFA_MACHINE_VERSION, mfaMachine } from '../../machines/mfa.machine.ts';
import { signupMachine } from '../../machines/signup.machine.ts';
import { stepOfValue, TAG_DELEGATING } from '../../machines/types.ts';
import { recoveryMachine } from '../../machines/recovery.machine.ts';

/** Every atomic or final state, by path. */
function leaves(node: AnyStateNode, path: string[] = []): { path: string[]; node: AnyStateNode; chain: AnyStateNode[] }[] {
  const out: { path: string[]; node: AnyStateNode; chain: AnyStateNode[] }[] = [];
  const walk = (n: AnyStateNode, p: string[], chain: AnyStateNode[]) => {
    const kids = Object.entries(n.states ?? {});
    if (!kids.length) out.push({ path: p, node: n, chain });
    for (const [k, c] of kids) walk(c as AnyStateNode, [...p, k], [...chain, c as AnyStateNode]);
  };
  walk(node, path, []);
  return out;
}

const valueOf = (path: string[]): unknown => path.reduceRight<unknown>((acc, k) => (acc === undefined ? k : { [k]: acc }), undefined);

describe('flow steps are declared on the machines (meta.step)', () => {
  it.each([
    ['login', loginMachine],
    ['mfa', mfaMachine],
    ['signup', signupMachine],
    ['recovery', recoveryMachine],
  ] as [string, AnyStateMachine][])('%s: every state declares its step, except a delegating one', (_, machine) => {
    for (const { path, chain } of leaves(machine.root)) {
      const delegating = chain.some((n) => n.tags.includes(TAG_DELEGATING));
      const step = stepOfValue(machine.root, valueOf(path));
      if (delegating) expect(step, path.join('.')).toBeUndefined();
      else expect(step, path.join('.')).toMatch(/^[a-z_]+$/);
    }
  });

  it('maps the resting states the client sees', () => {
    expect(stepOfValue(loginMachine.root, 'awaitingPassword')).toBe('password');
    expect(stepOfValue(loginMachine.root, 'awaitingPasskey')).toBe('webauthn');
    expect(stepOfValue(loginMachine.root, 'allowed')).toBe('done');
    expect(stepOfValue(loginMachine.root, { stepUp: 'challenging' })).toBeUndefined();
    expect(stepOfValue(mfaMachine.root, 'choosing')).toBe('choose_method');
    expect(stepOfValue(mfaMachine.root, 'recoveryCode')).toBe('recovery_code');
    expect(stepOfValue(mfaMachine.root, 'verified')).toBe('done');
  });

  it('one flow version covers the login machine and the MFA child it carries', () => {
    expect(LOGIN_FLOW_VERSION % 1000).toBe(MFA_MACHINE_VERSION);
  });
});
