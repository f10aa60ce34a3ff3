import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock, waitFor, type AnyActorRef } from 'xstate';
import { loginMachine, type LoginInput, type PasskeyResult } from '../../machines/login.machine.ts';
import { mfaMachine } from '../../machines/mfa.machine.ts';
import type { FlowEffect, PasswordResult, RiskOutcome } from '../../machines/types.ts';

const input: LoginInput = {
  flowId: 'flw_test',
  deviceId: 'dev-a',
  ip: '81.2.69.142',
  maxPasswordAttempts: 3,
  maxMfaAttempts: 3,
  riskTimeoutMs: 2000,
};

const risk = (decision: RiskOutcome['decision'], reasons: string[] = []): RiskOutcome => ({
  decision,
  level: decision === 'allow' ? 'low' : decision === 'step_up' ? 'medium' : 'high',
  score: 0,
  reasons,
  policyVersion: 'test',
  contributions: {},
  signals: {},
  country: 'GB',
  lat: 0,
  lon: 0,
});

interface Fakes {
  passkey?: (response: Record<string, unknown>) => PasskeyResult;
  password?: (i: { identifier: string; password: string }) => PasswordResult;
  risk?: () => Promise<RiskOutcome>;
  totp?: (code: string) => boolean;
  recovery?: (code: string) => boolean;
}

function machineWith(f: Fakes) {
  return loginMachine.provide({
    actors: {
      verifyPassword: fromPromise(async ({ input }: { input: { identifier: string; password: string } }) =>
        (f.password ?? ((i) => ({ ok: i.password.startsWith('right'), identityId: 'u1', methods: ['totp', 'recovery_code'], accountLocked: false })))(input),
      ),
      scoreRisk: fromPromise(async () => (f.risk ?? (async () => risk('allow')))()),
      startPasskey: fromPromise(async (): Promise<Record<string, unknown>> => ({ challenge: 'c1', rpId: 'threshold.test' })),
      verifyPasskey: fromPromise(async ({ input }: { input: { flowId: string; response: Record<string, unknown> } }) =>
        (f.passkey ?? ((r): PasskeyResult => ({ ok: r.id === 'good', identityId: r.id === 'good' ? 'u1' : null, amr: ['hwk', 'user', 'mfa'], methods: ['webauthn'] })))(input.response),
      ),
      mfa: mfaMachine.provide({
        actors: {
          verifyTotp: fromPromise(async ({ input }: { input: { identityId: string; code: string } }) => (f.totp ?? ((c) => c === '123456'))(input.code)),
          verifyRecoveryCode: fromPromise(async ({ input }: { input: { identityId: string; code: string } }) => (f.recovery ?? (() => false))(input.code)),
        },
      }) as never,
    },
  });
}

/** Resting: final, awaiting input, or delegating to an MFA child that awaits input. */
const resting = (a: AnyActorRef) => {
  const s = a.getSnapshot();
  if (s.status !== 'active') return true;
  if (s.hasTag('awaitingInput')) return true;
  const child = s.children.mfa as AnyActorRef | undefined;
  return s.hasTag('delegating') && !!child && child.getSnapshot().hasTag('awaitingInput');
};

async function start(f: Fakes, opts: { clock?: SimulatedClock; method?: 'passkey' } = {}) {
  const effects: FlowEffect[] = [];
  const i = { ...input, method: opts.method };
  const actor = createActor(machineWith(f), opts.clock ? { input: i, clock: opts.clock } : { input: i });
  actor.on('*', (e) => effects.push(e as FlowEffect));
  actor.start();
  return { actor, effects, settle: () => waitFor(actor, () => resting(actor), { timeout: 5000 }) };
}

describe('login machine', () => {
  it('starts awaiting the password', async () => {
    const { actor } = await start({});
    expect(actor.getSnapshot().value).toBe('awaitingPassword');
    expect(actor.getSnapshot().hasTag('awaitingInput')).toBe(true);
  });

  it('allows a low-risk login with amr pwd', async () => {
    const { actor, effects, settle } = await start({});
    actor.send({ type: 'password', identifier: 'a@x.io', password: 'right' });
    await settle();
    const s = actor.getSnapshot();
    expect(s.value).toBe('allowed');
    expect(s.output).toMatchObject({ outcome: 'allowed', identityId: 'u1', amr: ['pwd'], acr: 'urn:threshold:acr:aal1' });
    expect(effects.map((e) => e.type)).toEqual(['risk.decided', 'login.allowed']);
  });

  it('returns to the password prompt on a wrong password and locks after the budget', async () => {
    const { actor, effects, settle } = await start({});
    for (let i = 0; i < 2; i++) {
      actor.send({ type: 'password', identifier: 'a@x.io', password: 'wrong' });
      await settle();
      expect(actor.getSnapshot().value).toBe('awaitingPassword');
      expect(actor.getSnapshot().context.messages[0]?.code).toBe('INVALID_CREDENTIALS');
    }
    actor.send({ type: 'password', identifier: 'a@x.io', password: 'wrong' });
    await settle();
    expect(actor.getSnapshot().value).toBe('locked');
    expect(actor.getSnapshot().output?.outcome).toBe('locked');
    expect(effects.filter((e) => e.type === 'login.failed')).toHaveLength(3);
    expect(effects.at(-1)?.type).toBe('login.locked');
  });

  it('answers a locked account exactly like a wrong password', async () => {
    const { actor, settle } = await start({
      password: () => ({ ok: false, identityId: 'u1', methods: [], accountLocked: true }),
    });
    actor.send({ type: 'password', identifier: 'a@x.io', password: 'x' });
    await settle();
    expect(actor.getSnapshot().value).toBe('awaitingPassword');
    expect(actor.getSnapshot().context.messages[0]?.code).toBe('INVALID_CREDENTIALS');
  });

  it('never lets in when the password check itself fails', async () => {
    const { actor, settle } = await start({
      password: () => {
        throw new Error('db down');
      },
    });
    actor.send({ type: 'password', identifier: 'a@x.io', password: 'right' });
    await settle();
    expect(actor.getSnapshot().value).toBe('awaitingPassword');
    expect(actor.getSnapshot().context.messages[0]?.code).toBe('SERVICE_UNAVAILABLE');
  });

  it('denies when the policy says deny', async () => {
    const { actor, effects, settle } = await start({ risk: async () => risk('deny', ['SUSPICIOUS_IP']) });
    actor.send({ type: 'password', identifier: 'a@x.io', password: 'right' });
    await settle();
    expect(actor.getSnapshot().value).toBe('denied');
    expect(actor.getSnapshot().output).toMatchObject({ outcome: 'denied', reason: 'RISK_DENIED' });
    expect(effects.map((e) => e.type)).toEqual(['risk.decided', 'login.denied']);
  });

  it('fails closed to step-up with RISK_UNAVAILABLE when the scorer misses its deadline', async () => {
    const clock = new SimulatedClock();
    const { actor, settle } = await start({ risk: () => new Promise(() => {}) }, { clock });
    actor.send({ type: 'password', identifier: 'a@x.io', password: 'right' });
    // Barrier: the password check settled and the risk deadline is armed.
    await waitFor(actor, (snap) => snap.value === 'assessingRisk');
    clock.increment(1999);
    expect(actor.getSnapshot().value).toBe('assessingRisk');
    clock.increment(1);
    await settle();
    expect(actor.getSnapshot().matches({ stepUp: 'challenging' })).toBe(true);
    expect(actor.getSnapshot().context.risk?.reasons).toEqual(['RISK_UNAVAILABLE']);
  });

  it('fails closed to step-up when the scorer errors', async () => {
    const { actor, settle } = await start({ risk: async () => Promise.reject(new Error('redis down')) });
    actor.send({ type: 'password', identifier: 'a@x.io', password: 'right' });
    await settle();
    expect(actor.getSnapshot().context.risk?.reasons).toEqual(['RISK_UNAVAILABLE']);
    expect(actor.getSnapshot().matches('stepUp')).toBe(true);
  });

  it('steps up to TOTP and ends with pwd otp mfa', async () => {
    const { actor, effects, settle } = await start({ risk: async () => risk('step_up', ['NEW_DEVICE', 'NEW_COUNTRY']) });
    actor.send({ type: 'password', identifier: 'a@x.io', password: 'right' });
    await settle();
    const mfa = actor.getSnapshot().children.mfa as AnyActorRef;
    expect(mfa.getSnapshot().value).toBe('choosing');
    actor.send({ type: 'choose', method: 'totp' });
    await settle();
    expect(mfa.getSnapshot().value).toBe('totp');
    actor.send({ type: 'totp', code: '123456' });
    await settle();
    expect(actor.getSnapshot().value).toBe('allowed');
    expect(actor.getSnapshot().output).toMatchObject({ amr: ['pwd', 'otp', 'mfa'], acr: 'urn:threshold:acr:aal2', factors: ['pwd', 'totp'] });
    expect(effects.map((e) => e.type)).toEqual(['risk.decided', 'login.stepped_up', 'login.allowed']);
  });

  it('denies a step-up for a user with no second factor', async () => {
    const { actor, settle } = await start({
      password: () => ({ ok: true, identityId: 'u1', methods: [], accountLocked: false }),
      risk: async () => risk('step_up', ['NEW_COUNTRY']),
    });
    actor.send({ type: 'password', identifier: 'a@x.io', password: 'right' });
    await settle();
    expect(actor.getSnapshot().output).toMatchObject({ outcome: 'denied', reason: 'MFA_REQUIRED_NO_FACTOR' });
  });

  it('retries a wrong code a bounded number of times, then locks', async () => {
    const { actor, effects, settle } = await start({
      password: () => ({ ok: true, identityId: 'u1', methods: ['totp'], accountLocked: false }),
      risk: async () => risk('step_up'),
    });
    actor.send({ type: 'password', identifier: 'a@x.io', password: 'right' });
    await settle();
    const mfa = actor.getSnapshot().children.mfa as AnyActorRef;
    expect(mfa.getSnapshot().value).toBe('totp'); // a single method is chosen for the user
    for (let i = 0; i < 2; i++) {
      actor.send({ type: 'totp', code: '000000' });
      await settle();
      expect(mfa.getSnapshot().value).toBe('totp');
      expect(mfa.getSnapshot().context.messages[0].code).toBe('MFA_CODE_INVALID');
    }
    actor.send({ type: 'totp', code: '000000' });
    await settle();
    expect(actor.getSnapshot().output).toMatchObject({ outcome: 'locked', reason: 'MFA_LOCKED' });
    expect(effects.filter((e) => e.type === 'mfa.challenge_failed')).toHaveLength(3);
    expect(effects.some((e) => e.type === 'mfa.locked')).toBe(true);
  });

  it('accepts a recovery code as the second factor without publishing a non-RFC amr', async () => {
    const { actor, settle } = await start({ risk: async () => risk('step_up'), recovery: (c) => c === 'abcd-efgh' });
    actor.send({ type: 'password', identifier: 'a@x.io', password: 'right' });
    await settle();
    actor.send({ type: 'choose', method: 'recovery_code' });
    await settle();
    actor.send({ type: 'recovery_code', code: 'abcd-efgh' });
    await settle();
    expect(actor.getSnapshot().output?.amr).toEqual(['pwd', 'lookup', 'mfa']);
  });

  it('ignores events the state does not take', async () => {
    const { actor } = await start({});
    expect(actor.getSnapshot().can({ type: 'totp', code: '123456' })).toBe(false);
    expect(actor.getSnapshot().can({ type: 'password', identifier: 'a', password: 'b' })).toBe(true);
  });

  it('survives persist and restore while waiting for the second factor, without the password', async () => {
    const f: Fakes = { risk: async () => risk('step_up') };
    const { actor, settle } = await start(f);
    actor.send({ type: 'password', identifier: 'a@x.io', password: 'right-password-xyz' });
    await settle();
    actor.send({ type: 'choose', method: 'totp' });
    await settle();
    const persisted = actor.getPersistedSnapshot();
    actor.stop();
    const text = JSON.stringify(persisted);
    expect(text).not.toContain('right-password-xyz');
    const restored = createActor(machineWith(f), { snapshot: JSON.parse(text), input });
    restored.start();
    const mfa = restored.getSnapshot().children.mfa as AnyActorRef;
    expect(mfa.getSnapshot().value).toBe('totp');
    restored.send({ type: 'totp', code: '123456' });
    await waitFor(restored, (s) => s.status === 'done', { timeout: 5000 });
    expect(restored.getSnapshot().output?.amr).toEqual(['pwd', 'otp', 'mfa']);
  });

  describe('passkey sign-in (first factor)', () => {
    it('asks for a passkey with no identifier and signs in with hwk user mfa', async () => {
      const { actor, effects, settle } = await start({}, { method: 'passkey' });
      await settle();
      expect(actor.getSnapshot().value).toBe('awaitingPasskey');
      expect(actor.getSnapshot().context.challenge).toEqual({ challenge: 'c1', rpId: 'threshold.test' });
      expect(actor.getSnapshot().can({ type: 'password', identifier: 'a', password: 'b' })).toBe(false);
      actor.send({ type: 'webauthn', response: { id: 'good' } });
      await settle();
      expect(actor.getSnapshot().output).toMatchObject({ outcome: 'allowed', identityId: 'u1', amr: ['hwk', 'user', 'mfa'], acr: 'urn:threshold:acr:aal2', factors: ['webauthn'] });
      expect(effects.map((e) => e.type)).toEqual(['risk.decided', 'login.allowed']);
    });

    it('needs no further step-up when the passkey already proved mfa, but still obeys deny', async () => {
      const stepped = await start({ risk: async () => risk('step_up', ['NEW_COUNTRY']) }, { method: 'passkey' });
      await stepped.settle();
      stepped.actor.send({ type: 'webauthn', response: { id: 'good' } });
      await stepped.settle();
      expect(stepped.actor.getSnapshot().value).toBe('allowed');
      const denied = await start({ risk: async () => risk('deny', ['SUSPICIOUS_IP']) }, { method: 'passkey' });
      await denied.settle();
      denied.actor.send({ type: 'webauthn', response: { id: 'good' } });
      await denied.settle();
      expect(denied.actor.getSnapshot().value).toBe('denied');
    });

    it('steps up a presence-only passkey (no UV) like a password', async () => {
      const { actor, settle } = await start(
        { passkey: () => ({ ok: true, identityId: 'u1', amr: ['swk'], methods: ['webauthn', 'totp'] }), risk: async () => risk('step_up') },
        { method: 'passkey' },
      );
      await settle();
      actor.send({ type: 'webauthn', response: { id: 'x' } });
      await settle();
      expect(actor.getSnapshot().matches({ stepUp: 'challenging' })).toBe(true);
    });

    it('gives each failed try a fresh challenge and locks after the budget', async () => {
      const { actor, effects, settle } = await start({}, { method: 'passkey' });
      await settle();
      for (let i = 0; i < 2; i++) {
        actor.send({ type: 'webauthn', response: { id: 'bad' } });
        await settle();
        expect(actor.getSnapshot().value).toBe('awaitingPasskey');
        expect(actor.getSnapshot().context.messages[0].code).toBe('WEBAUTHN_FAILED');
      }
      actor.send({ type: 'webauthn', response: { id: 'bad' } });
      await settle();
      expect(actor.getSnapshot().value).toBe('locked');
      expect(effects.filter((e) => e.type === 'login.failed')).toHaveLength(3);
    });
  });
});
