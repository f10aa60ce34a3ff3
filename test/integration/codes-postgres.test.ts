import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import { createCodeService, type CodeService } from '../../src/authn/methods/codes/codes.ts';
import { AppError } from '../../src/errors.ts';
import { createTestDb } from '../helpers/db.ts';

// One-time SMS/email codes on the real Postgres (PGlite has one connection and cannot race).
let t: Awaited<ReturnType<typeof createTestDb>>;
const clock = new ManualClock(Date.UTC(2026, 2, 1, 9));
const pepper = randomBytes(32);
let codes: CodeService;

const TTL = 300;
const COOLDOWN = 30;
const MAX = 5;

beforeAll(async () => {
  t = await createTestDb();
  codes = createCodeService({ db: t.db, clock, pepper, ttlSeconds: TTL, resendCooldownSeconds: COOLDOWN, maxAttempts: MAX });
});
afterAll(async () => {
  await t?.drop();
});

const flow = () => `flow-${randomUUID()}`;
const identityId = randomUUID();
const issue = (flowId: string, channel: 'sms' | 'email' = 'email', destination = 'ada@example.test') =>
  codes.issue({ flowId, identityId, channel, destination });
/** A code that is not `code` (same length, all digits). */
const other = (code: string) => code.replace(/\d$/, (d) => String((Number(d) + 1) % 10));
const row = async (flowId: string) =>
  (await t.db.query<{ attempts: number; sends: number; code_hash: string; id: string }>('SELECT * FROM otp_challenges WHERE flow_id = $1', [flowId])).rows[0];

async function expectAppError(p: Promise<unknown>, code: string): Promise<AppError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(AppError);
  expect((e as AppError).code).toBe(code);
  return e as AppError;
}

describe('one-time codes', () => {
  it('issues 6-digit codes that expire within the TTL', async () => {
    const f = flow();
    const c = await issue(f);
    expect(c.code).toMatch(/^\d{6}$/);
    expect(c.expiresAt).toBe(clock.now() + TTL * 1000);
    expect(c.destination).toBe('ada@example.test');
  });

  it('accepts each code once', async () => {
    const f = flow();
    const { code } = await issue(f);
    expect(await codes.verify(f, code)).toBe('ok');
    expect(await codes.verify(f, code)).toBe('invalid');
  });

  it('lets exactly one of 20 parallel submissions of a code succeed', async () => {
    const f = flow();
    const { code } = await issue(f);
    const results = await Promise.all(Array.from({ length: 20 }, () => codes.verify(f, code)));
    expect(results.filter((r) => r === 'ok')).toHaveLength(1);
    expect(results.filter((r) => r !== 'ok').every((r) => r === 'invalid')).toBe(true);
    // The losers did not spend guesses: they submitted the right code.
    expect((await row(f))?.attempts).toBe(0);
  });

  it('counts wrong guesses and, after the budget, refuses even the right code', async () => {
    const f = flow();
    const { code } = await issue(f);
    for (let i = 1; i < MAX; i++) {
      expect(await codes.verify(f, other(code))).toBe('invalid');
      expect((await row(f))?.attempts).toBe(i);
    }
    expect(await codes.verify(f, other(code))).toBe('locked');
    expect(await codes.verify(f, code)).toBe('locked');
    expect((await row(f))?.attempts).toBe(MAX);
  });

  it('never counts more wrong guesses than the budget under concurrency', async () => {
    const f = flow();
    const { code } = await issue(f);
    const results = await Promise.all(Array.from({ length: 20 }, () => codes.verify(f, other(code))));
    expect(results.filter((r) => r === 'invalid')).toHaveLength(MAX - 1);
    expect(results.filter((r) => r === 'locked')).toHaveLength(20 - (MAX - 1));
    expect((await row(f))?.attempts).toBe(MAX);
  });

  it('counts malformed input as a guess', async () => {
    const f = flow();
    await issue(f);
    expect(await codes.verify(f, '12ab56')).toBe('invalid');
    expect(await codes.verify(f, '')).toBe('invalid');
    expect((await row(f))?.attempts).toBe(2);
  });

  it('refuses a resend within the cooldown, with Retry-After', async () => {
    const f = flow();
    await issue(f);
    clock.advance(10_000);
    const e = await expectAppError(codes.resend(f, 'email'), 'CODE_RESEND_TOO_SOON');
    expect(e.status).toBe(429);
    expect(e.headers?.['Retry-After']).toBe('20');
    // Asking again through issue() on the same channel and address is a resend too.
    await expectAppError(issue(f), 'CODE_RESEND_TOO_SOON');
  });

  it('resends a new code after the cooldown: the old code dies and the guess budget is not reset', async () => {
    const f = flow();
    const first = await issue(f);
    expect(await codes.verify(f, other(first.code))).toBe('invalid');
    expect(await codes.verify(f, other(first.code))).toBe('invalid');
    clock.advance(COOLDOWN * 1000);
    const second = await codes.resend(f, 'email');
    expect(second.challengeId).toBe(first.challengeId);
    const r = await row(f);
    expect(r?.attempts).toBe(2);
    expect(r?.sends).toBe(2);
    // One row per flow: a resend cannot bring a fresh budget with a new row.
    expect((await t.db.query('SELECT 1 FROM otp_challenges WHERE flow_id = $1', [f])).rowCount).toBe(1);
    if (second.code !== first.code) expect(await codes.verify(f, first.code)).toBe('invalid');
    expect((await row(f))?.attempts).toBe(second.code !== first.code ? 3 : 2);
    expect(await codes.verify(f, second.code)).toBe('ok');
  });

  it('keeps the spent budget across resends, so resending cannot buy guesses', async () => {
    const f = flow();
    let { code } = await issue(f);
    let verdict = 'invalid';
    let guesses = 0;
    while (verdict === 'invalid') {
      verdict = await codes.verify(f, other(code));
      guesses++;
      clock.advance(COOLDOWN * 1000);
      if (verdict === 'invalid') ({ code } = await codes.resend(f, 'email'));
    }
    expect(verdict).toBe('locked');
    expect(guesses).toBe(MAX);
    await expectAppError(codes.resend(f, 'email'), 'MFA_CODE_LOCKED');
    expect(await codes.verify(f, code)).toBe('locked');
  });

  it('lets the user switch channel at once (provider down), on the same budget', async () => {
    const f = flow();
    const sms = await issue(f, 'sms', '+447700900123');
    expect(await codes.verify(f, other(sms.code))).toBe('invalid');
    const email = await issue(f, 'email', 'ada@example.test');
    expect(email.channel).toBe('email');
    expect((await row(f))?.attempts).toBe(1);
    if (email.code !== sms.code) expect(await codes.verify(f, sms.code)).toBe('invalid');
    expect(await codes.verify(f, email.code)).toBe('ok');
    // A resend on a channel the flow is not using has nothing to resend.
    await expectAppError(codes.resend(flow(), 'sms'), 'MFA_CHALLENGE_NOT_FOUND');
  });

  it('expires codes after the TTL', async () => {
    const f = flow();
    const { code } = await issue(f);
    clock.advance(TTL * 1000 - 1);
    const f2 = flow();
    const c2 = await issue(f2);
    expect(await codes.verify(f, code)).toBe('ok');
    clock.advance(TTL * 1000);
    expect(await codes.verify(f2, c2.code)).toBe('expired');
    expect(await codes.verify(f2, other(c2.code))).toBe('expired');
    // Expired guesses are not counted; a resend revives the challenge with a new code.
    expect((await row(f2))?.attempts).toBe(0);
    const c3 = await codes.resend(f2, 'email');
    expect(await codes.verify(f2, c3.code)).toBe('ok');
  });

  it('binds a code to its flow: a code from flow A fails in flow B', async () => {
    const a = flow();
    const b = flow();
    const ca = await issue(a);
    const cb = await issue(b);
    if (ca.code === cb.code) return; // one in a million: nothing to show
    expect(await codes.verify(b, ca.code)).toBe('invalid');
    expect(await codes.verify('flow-without-challenge', ca.code)).toBe('invalid');
    expect(await codes.verify(a, ca.code)).toBe('ok');
    expect(await codes.verify(b, cb.code)).toBe('ok');
  });

  it('stores only a keyed hash of the code', async () => {
    for (let i = 0; i < 20; i++) {
      const f = flow();
      const { code, challengeId } = await issue(f);
      const r = await row(f);
      expect(r?.id).toBe(challengeId);
      expect(r?.code_hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(r?.code_hash).not.toBe(code);
      expect(r?.code_hash.includes(code)).toBe(false);
      const all = JSON.stringify((await t.db.query('SELECT * FROM otp_challenges WHERE flow_id = $1', [f])).rows);
      expect(all.includes(`"${code}"`)).toBe(false);
    }
  });

  it('refuses settings NIST does not allow', () => {
    const base = { db: t.db, clock, pepper, resendCooldownSeconds: 30, maxAttempts: 5 };
    expect(() => createCodeService({ ...base, ttlSeconds: 601 })).toThrow(/ttlSeconds/);
    expect(() => createCodeService({ ...base, ttlSeconds: 300, digits: 5 })).toThrow(/digits/);
  });

  it('starts a new challenge for a flow whose previous code was used', async () => {
    const f = flow();
    const first = await issue(f);
    expect(await codes.verify(f, other(first.code))).toBe('invalid');
    expect(await codes.verify(f, first.code)).toBe('ok');
    const next = await issue(f);
    expect(next.challengeId).not.toBe(first.challengeId);
    expect(await codes.verify(f, first.code === next.code ? other(next.code) : first.code)).toBe('invalid');
    expect(await codes.verify(f, next.code)).toBe('ok');
  });
});
