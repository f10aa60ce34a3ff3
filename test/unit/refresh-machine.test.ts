import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock, toPromise } from 'xstate';
import {
  refreshMachine,
  REFRESH_DESCRIPTIONS,
  STEP_UP_REQUIRED_DESCRIPTION,
  type RefreshInput,
  type RefreshOutput,
  type RefreshRecord,
  type RescoreInput,
  type RevokeFamilyInput,
  type RiskVerdict,
  type RotateInput,
  type RotateResult,
} from '../../machines/refresh.machine.ts';

const NOW = Date.UTC(2026, 0, 1, 12);
const tokens = (n: string) => ({ access_token: `at-${n}`, token_type: 'Bearer' as const, expires_in: 600, refresh_token: `rt-${n}` });

const input = (o: Partial<RefreshInput> = {}): RefreshInput => ({
  tokenHash: 'h1',
  now: NOW,
  graceMs: 0,
  rescore: true,
  rescoreTimeoutMs: 2000,
  client: { ip: '81.2.69.142', network: '81.2.69.0/24', country: 'GB', deviceId: 'dev-a' },
  ...o,
});

const record = (o: Partial<RefreshRecord> = {}): RefreshRecord => ({
  tokenId: 't1',
  familyId: 'f1',
  sessionId: 's1',
  identityId: 'u1',
  expiresAt: NOW + 3600_000,
  rotatedAt: null,
  revoked: false,
  session: { sid: 's1', amr: ['pwd', 'otp', 'mfa'], acr: 'urn:threshold:acr:aal2', authTime: NOW / 1000 - 60, absoluteExpiresAt: NOW + 12 * 3600_000 },
  last: { network: '81.2.69.0/24', country: 'GB' },
  childCurrent: false,
  ...o,
});

interface Fakes {
  lookups?: Array<RefreshRecord | null | Error>;
  rotate?: Array<RotateResult | Error>;
  reissue?: Array<RotateResult | Error>;
  rescore?: () => Promise<RiskVerdict>;
  revoke?: () => Promise<void>;
}

async function run(f: Fakes, i: RefreshInput = input(), clock?: SimulatedClock) {
  const calls = { lookup: 0, rotate: [] as RotateInput[], reissue: [] as RotateInput[], rescore: [] as RescoreInput[], revoke: [] as RevokeFamilyInput[] };
  const next = <T>(list: Array<T | Error> | undefined, n: number, what: string): T => {
    const v = list?.[Math.min(n, (list?.length ?? 1) - 1)];
    if (v === undefined) throw new Error(`${what} not expected`);
    if (v instanceof Error) throw v;
    return v;
  };
  const machine = refreshMachine.provide({
    actors: {
      lookup: fromPromise(async () => next(f.lookups, calls.lookup++, 'lookup')),
      rotate: fromPromise(async ({ input: x }: { input: RotateInput }) => next(f.rotate, calls.rotate.push(x) - 1, 'rotate')),
      reissue: fromPromise(async ({ input: x }: { input: RotateInput }) => next(f.reissue, calls.reissue.push(x) - 1, 'reissue')),
      rescore: fromPromise(async ({ input: x }: { input: RescoreInput }) => {
        calls.rescore.push(x);
        return (f.rescore ?? (async () => 'allow' as const))();
      }),
      revokeFamily: fromPromise(async ({ input: x }: { input: RevokeFamilyInput }) => {
        calls.revoke.push(x);
        await (f.revoke ?? (async () => undefined))();
      }),
    },
  });
  const actor = createActor(machine, clock ? { input: i, clock } : { input: i });
  const states: string[] = [];
  actor.subscribe((s) => states.push(String(s.value)));
  const done = toPromise(actor);
  actor.start();
  const out: RefreshOutput = await done;
  return { out, calls, states, final: String(actor.getSnapshot().value) };
}

const moved = input({ client: { ip: '8.8.8.8', network: '8.8.8.0/24', country: 'US', deviceId: 'dev-a' } });

describe('refresh machine', () => {
  it('unchanged client: lookingUp → checking → rotating → issued, with the rotated tokens', async () => {
    const r = await run({ lookups: [record()], rotate: [{ ok: true, tokens: tokens('2') }] });
    expect(r.final).toBe('issued');
    expect(r.out).toMatchObject({ ok: true, reason: 'ROTATED', tokens: tokens('2'), familyId: 'f1', sessionId: 's1', identityId: 'u1' });
    expect(r.calls.rescore).toHaveLength(0);
    expect(r.calls.rotate[0]).toMatchObject({ tokenId: 't1', familyId: 'f1', identityId: 'u1', session: { sid: 's1', amr: ['pwd', 'otp', 'mfa'] } });
  });

  it('unknown token → invalidGrant', async () => {
    const r = await run({ lookups: [null] });
    expect(r.final).toBe('invalidGrant');
    expect(r.out).toEqual({ ok: false, error: 'invalid_grant', errorDescription: REFRESH_DESCRIPTIONS.UNKNOWN_TOKEN, reason: 'UNKNOWN_TOKEN' });
  });

  it('revoked token or family → invalidGrant, nothing else runs', async () => {
    const r = await run({ lookups: [record({ revoked: true, rotatedAt: NOW - 1000 })] });
    expect(r.out).toMatchObject({ ok: false, error: 'invalid_grant', reason: 'REVOKED' });
    expect(r.calls.revoke).toHaveLength(0);
    expect(r.calls.rotate).toHaveLength(0);
  });

  it('ended session (revoked, locked, idle) → invalidGrant', async () => {
    const r = await run({ lookups: [record({ session: null })] });
    expect(r.out).toMatchObject({ ok: false, reason: 'SESSION_ENDED', errorDescription: REFRESH_DESCRIPTIONS.SESSION_ENDED });
  });

  it('session past its absolute expiry → invalidGrant even if the token has time left', async () => {
    const r = await run({ lookups: [record({ session: { ...record().session!, absoluteExpiresAt: NOW } })] });
    expect(r.out).toMatchObject({ ok: false, reason: 'SESSION_ENDED' });
    expect(r.calls.rotate).toHaveLength(0);
  });

  it('expired token → invalidGrant without rotating', async () => {
    const r = await run({ lookups: [record({ expiresAt: NOW })] });
    expect(r.out).toMatchObject({ ok: false, reason: 'EXPIRED', errorDescription: REFRESH_DESCRIPTIONS.EXPIRED });
    expect(r.calls.rotate).toHaveLength(0);
  });

  it('already rotated → reuseDetected: revokes the family and locks the session → invalidGrant', async () => {
    const r = await run({ lookups: [record({ rotatedAt: NOW - 5000 })] });
    expect(r.states).toContain('reuseDetected');
    expect(r.final).toBe('invalidGrant');
    expect(r.out).toMatchObject({ ok: false, error: 'invalid_grant', reason: 'REUSE_DETECTED' });
    expect(r.calls.revoke).toEqual([{ familyId: 'f1', sessionId: 's1', identityId: 'u1', tokenId: 't1', reason: 'refresh_reuse', lockSession: true }]);
  });

  it('a rotated token is reuse even after it expired', async () => {
    const r = await run({ lookups: [record({ rotatedAt: NOW - 7200_000, expiresAt: NOW - 3600_000 })] });
    expect(r.out.reason).toBe('REUSE_DETECTED');
    expect(r.calls.revoke).toHaveLength(1);
  });

  it('grace off (0): the immediately previous token a moment later is still reuse', async () => {
    const r = await run({ lookups: [record({ rotatedAt: NOW - 1, childCurrent: true })] });
    expect(r.out.reason).toBe('REUSE_DETECTED');
  });

  it('grace on: the immediately previous token inside the window → reissuing → issued (same child)', async () => {
    const r = await run({ lookups: [record({ rotatedAt: NOW - 5000, childCurrent: true })], reissue: [{ ok: true, tokens: tokens('child') }] }, input({ graceMs: 10_000 }));
    expect(r.states).toContain('reissuing');
    expect(r.out).toMatchObject({ ok: true, reason: 'REISSUED_IN_GRACE', tokens: tokens('child') });
    expect(r.calls.rotate).toHaveLength(0);
    expect(r.calls.revoke).toHaveLength(0);
  });

  it('grace on: outside the window → reuse', async () => {
    const r = await run({ lookups: [record({ rotatedAt: NOW - 10_001, childCurrent: true })] }, input({ graceMs: 10_000 }));
    expect(r.out.reason).toBe('REUSE_DETECTED');
  });

  it('grace on: an older token (its child was rotated too) → reuse', async () => {
    const r = await run({ lookups: [record({ rotatedAt: NOW - 1000, childCurrent: false })] }, input({ graceMs: 10_000 }));
    expect(r.out.reason).toBe('REUSE_DETECTED');
  });

  it('grace on, client moved: assessingRisk first, then reissuing', async () => {
    const r = await run(
      { lookups: [record({ rotatedAt: NOW - 1000, childCurrent: true })], reissue: [{ ok: true, tokens: tokens('child') }] },
      { ...moved, graceMs: 10_000 },
    );
    expect(r.states).toEqual(expect.arrayContaining(['assessingRisk', 'reissuing']));
    expect(r.out.reason).toBe('REISSUED_IN_GRACE');
  });

  it('grace: the child moved on meanwhile → looks up again → reuse', async () => {
    const r = await run(
      { lookups: [record({ rotatedAt: NOW - 1000, childCurrent: true }), record({ rotatedAt: NOW - 1000, childCurrent: false })], reissue: [{ ok: false, reason: 'raced' }] },
      input({ graceMs: 10_000 }),
    );
    expect(r.calls.lookup).toBe(2);
    expect(r.out.reason).toBe('REUSE_DETECTED');
  });

  it('network changed → assessingRisk with the client context; allow → rotating → issued', async () => {
    const r = await run({ lookups: [record()], rotate: [{ ok: true, tokens: tokens('2') }] }, moved);
    expect(r.states).toContain('assessingRisk');
    expect(r.calls.rescore).toEqual([{ identityId: 'u1', ip: '8.8.8.8', deviceId: 'dev-a', country: 'US' }]);
    expect(r.out.ok).toBe(true);
  });

  it('same network, different country (e.g. the last one was not located) → assessingRisk', async () => {
    const r = await run({ lookups: [record({ last: { network: '81.2.69.0/24', country: null } })], rotate: [{ ok: true, tokens: tokens('2') }] });
    expect(r.calls.rescore).toHaveLength(1);
  });

  it('step_up → stepUpRequired with the documented description; the token is not touched', async () => {
    const r = await run({ lookups: [record()], rescore: async () => 'step_up' }, moved);
    expect(r.final).toBe('stepUpRequired');
    expect(r.out).toMatchObject({ ok: false, error: 'invalid_grant', errorDescription: STEP_UP_REQUIRED_DESCRIPTION, reason: 'STEP_UP_REQUIRED' });
    expect(STEP_UP_REQUIRED_DESCRIPTION).toBe('step_up_required: re-authenticate with POST /auth/stepup or a new login');
    expect(r.calls.rotate).toHaveLength(0);
    expect(r.calls.revoke).toHaveLength(0);
  });

  it('deny → revokingForRisk: the family only (the session stays) → invalidGrant', async () => {
    const r = await run({ lookups: [record()], rescore: async () => 'deny' }, moved);
    expect(r.states).toContain('revokingForRisk');
    expect(r.out).toMatchObject({ ok: false, error: 'invalid_grant', reason: 'RISK_DENY', errorDescription: REFRESH_DESCRIPTIONS.RISK_DENY });
    expect(r.calls.revoke).toEqual([expect.objectContaining({ reason: 'risk_deny', lockSession: false })]);
  });

  it('rescore fails → fails closed to a step-up', async () => {
    const r = await run({ lookups: [record()], rescore: async () => Promise.reject(new Error('queue down')) }, moved);
    expect(r.out).toMatchObject({ ok: false, reason: 'RISK_UNAVAILABLE', errorDescription: STEP_UP_REQUIRED_DESCRIPTION });
  });

  it('rescore does not answer in time → fails closed to a step-up (simulated clock)', async () => {
    const clock = new SimulatedClock();
    let rescoring!: () => void;
    const called = new Promise<void>((r) => (rescoring = r));
    const pending = run({ lookups: [record()], rescore: () => (rescoring(), new Promise<RiskVerdict>(() => undefined)) }, moved, clock);
    // Barrier: the machine is waiting on the rescorer (its deadline was armed on the same entry).
    await called;
    clock.increment(1999);
    clock.increment(1);
    const r = await pending;
    expect(r.out.reason).toBe('RISK_UNAVAILABLE');
    expect(r.calls.rotate).toHaveLength(0);
  });

  it('no rescorer configured → a move does not assess', async () => {
    const r = await run({ lookups: [record()], rotate: [{ ok: true, tokens: tokens('2') }] }, { ...moved, rescore: false });
    expect(r.states).not.toContain('assessingRisk');
    expect(r.out.ok).toBe(true);
  });

  it('lost the rotation race → looks up again → now rotated → reuse', async () => {
    const r = await run({ lookups: [record(), record({ rotatedAt: NOW })], rotate: [{ ok: false, reason: 'raced' }] });
    expect(r.calls.lookup).toBe(2);
    expect(r.out.reason).toBe('REUSE_DETECTED');
    expect(r.calls.revoke).toHaveLength(1);
  });

  it('lost the race, and again: no loop → invalidGrant', async () => {
    const r = await run({ lookups: [record(), record()], rotate: [{ ok: false, reason: 'raced' }, { ok: false, reason: 'raced' }] });
    expect(r.calls.lookup).toBe(2);
    expect(r.calls.rotate).toHaveLength(2);
    expect(r.out).toMatchObject({ ok: false, error: 'invalid_grant', reason: 'REVOKED' });
  });

  it('rotation finds the session ended → invalidGrant', async () => {
    const r = await run({ lookups: [record()], rotate: [{ ok: false, reason: 'session_ended' }] });
    expect(r.out.reason).toBe('SESSION_ENDED');
  });

  it.each([
    ['lookup', { lookups: [new Error('db down')] }],
    ['rotate', { lookups: [record()], rotate: [new Error('connection terminated')] }],
    ['revokeFamily', { lookups: [record({ rotatedAt: NOW - 1 })], revoke: async () => Promise.reject(new Error('db down')) }],
  ] as Array<[string, Fakes]>)('%s fails → unavailable (temporarily_unavailable, never issued)', async (_, f) => {
    const r = await run(f);
    expect(r.final).toBe('unavailable');
    expect(r.out).toMatchObject({ ok: false, error: 'temporarily_unavailable', reason: 'UNAVAILABLE' });
    expect(r.out.tokens).toBeUndefined();
  });
});
