import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock, waitFor, type AnyActorRef } from 'xstate';
import { recoveryMachine, type LinkResult, type NewPasswordResult, type RecoveryEffect } from '../../machines/recovery.machine.ts';
import { mfaMachine } from '../../machines/mfa.machine.ts';
import type { MfaMethod, RiskOutcome } from '../../machines/types.ts';

const risk = (decision: RiskOutcome['decision']): RiskOutcome => ({
  decision,
  level: decision === 'allow' ? 'low' : decision === 'step_up' ? 'medium' : 'high',
  score: 0,
  reasons: [],
  policyVersion: 'test',
  contributions: {},
  signals: {},
  country: 'GB',
  lat: 0,
  lon: 0,
});

interface Fakes {
  methods?: MfaMethod[];
  risk?: () => Promise<RiskOutcome>;
  password?: (pw: string) => NewPasswordResult;
}

function start(f: Fakes, clock?: SimulatedClock) {
  const machine = recoveryMachine.provide({
    actors: {
      consumeLink: fromPromise(async ({ input }: { input: { flowId: string; code: string; deviceId: string | null } }): Promise<LinkResult> =>
        input.code === 'good-link' ? { ok: true, identityId: 'u1', methods: f.methods ?? [] } : { ok: false, identityId: null, methods: [] },
      ),
      scoreRisk: fromPromise(async () => (f.risk ?? (async () => risk('allow')))()),
      setNewPassword: fromPromise(async ({ input }: { input: { flowId: string; identityId: string; password: string } }) => (f.password ?? ((pw) => (pw.length >= 8 ? { ok: true } : { ok: false, code: 'PASSWORD_REJECTED', message: 'too short' })))(input.password)),
      mfa: mfaMachine.provide({
        actors: {
          verifyTotp: fromPromise(async ({ input }: { input: { identityId: string; code: string } }) => input.code === '123456'),
          verifyRecoveryCode: fromPromise(async ({ input }: { input: { identityId: string; code: string } }) => input.code === 'rc-good'),
        },
      }) as never,
    },
  });
  const effects: RecoveryEffect[] = [];
  const actor = createActor(machine, { input: { flowId: 'flw_test', maxLinkAttempts: 3, maxMfaAttempts: 3, riskTimeoutMs: 2000 }, ...(clock ? { clock } : {}) });
  actor.on('*', (e) => effects.push(e as RecoveryEffect));
  actor.start();
  return { actor, effects };
}

const settle = (a: AnyActorRef, value: string) => waitFor(a, (s) => s.matches(value) || s.status === 'done', { timeout: 2000 });

describe('recovery machine', () => {
  it('link → new password → recovered, for an account without a second factor at low risk', async () => {
    const { actor } = start({});
    actor.send({ type: 'link', code: 'good-link', ip: '81.2.69.142', deviceId: 'd1' });
    await settle(actor, 'awaitingPassword');
    actor.send({ type: 'password', password: 'short' });
    const rejected = await settle(actor, 'awaitingPassword');
    expect(rejected.context.error).toBe('PASSWORD_REJECTED');
    actor.send({ type: 'password', password: 'a-long-new-password' });
    const done = await waitFor(actor, (s) => s.status === 'done');
    expect(done.output).toMatchObject({ outcome: 'recovered', identityId: 'u1' });
  });

  it('locks after the link budget is spent', async () => {
    const { actor, effects } = start({});
    for (let i = 0; i < 3; i++) {
      actor.send({ type: 'link', code: 'wrong' });
      await waitFor(actor, (s) => (s.matches('awaitingLink') && s.context.linkAttempts === i + 1) || s.status === 'done');
    }
    expect(actor.getSnapshot().output).toMatchObject({ outcome: 'locked', reason: 'TOO_MANY_ATTEMPTS' });
    expect(effects.filter((e) => e.type === 'recovery.link_failed')).toHaveLength(3);
  });

  it('always asks the second factor of an account that has one, even at low risk; a password before it is not accepted', async () => {
    const { actor } = start({ methods: ['totp', 'recovery_code'] });
    actor.send({ type: 'link', code: 'good-link' });
    await waitFor(actor, (s) => s.matches('secondFactor'));
    expect(actor.getSnapshot().can({ type: 'password', password: 'x'.repeat(10) })).toBe(false);
    actor.send({ type: 'choose', method: 'recovery_code' });
    actor.send({ type: 'recovery_code', code: 'rc-good' });
    const s = await settle(actor, 'awaitingPassword');
    expect(s.context.factors).toEqual(['recovery_link', 'recovery_code']);
  });

  it('never offers an email code (it goes to the mailbox that received the link): an email-only account has no second factor here', async () => {
    const low = start({ methods: ['email'] });
    low.actor.send({ type: 'link', code: 'good-link' });
    expect((await settle(low.actor, 'awaitingPassword')).matches('awaitingPassword')).toBe(true);
    // So a risky recovery of it is refused rather than "stepped up" to the same mailbox.
    const risky = start({ methods: ['email'], risk: async () => risk('step_up') });
    risky.actor.send({ type: 'link', code: 'good-link' });
    expect((await waitFor(risky.actor, (s) => s.status === 'done')).output).toMatchObject({ outcome: 'denied', reason: 'MFA_REQUIRED_NO_FACTOR' });
    const both = start({ methods: ['totp', 'email'] });
    both.actor.send({ type: 'link', code: 'good-link' });
    await waitFor(both.actor, (s) => s.matches('secondFactor'));
    expect(both.actor.getSnapshot().context.methods).toEqual(['totp']);
  });

  it('denies at the deny threshold, and a step-up for an account without a factor', async () => {
    const denied = start({ risk: async () => risk('deny'), methods: ['totp'] });
    denied.actor.send({ type: 'link', code: 'good-link' });
    expect((await waitFor(denied.actor, (s) => s.status === 'done')).output).toMatchObject({ outcome: 'denied', reason: 'RISK_DENIED' });
    const noFactor = start({ risk: async () => risk('step_up') });
    noFactor.actor.send({ type: 'link', code: 'good-link' });
    expect((await waitFor(noFactor.actor, (s) => s.status === 'done')).output).toMatchObject({ outcome: 'denied', reason: 'MFA_REQUIRED_NO_FACTOR' });
    expect(noFactor.effects.map((e) => e.type)).toEqual(['recovery.risk_decided', 'recovery.denied']);
  });

  it('fails closed when the scorer does not answer in time', async () => {
    const clock = new SimulatedClock();
    const { actor } = start({ risk: () => new Promise<RiskOutcome>(() => {}) }, clock);
    actor.send({ type: 'link', code: 'good-link' });
    await waitFor(actor, (s) => s.matches('assessingRisk'));
    clock.increment(2001);
    const s = await waitFor(actor, (x) => x.status === 'done');
    expect(s.output).toMatchObject({ outcome: 'denied', reason: 'MFA_REQUIRED_NO_FACTOR' });
    expect(s.context.risk?.reasons).toEqual(['RISK_UNAVAILABLE']);
  });
});
