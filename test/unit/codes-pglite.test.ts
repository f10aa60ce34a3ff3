import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCodeService, type CodeService } from '../../src/authn/methods/codes/codes.ts';
import { ManualClock } from '../../src/clock.ts';
import type { Db } from '../../src/db/db.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPgliteDb } from '../../src/db/pglite.ts';

// The embedded default runs the same code service on PGlite (the race is shown on Postgres).
describe('one-time codes on PGlite', () => {
  let db: Db;
  let codes: CodeService;
  const clock = new ManualClock(Date.UTC(2026, 3, 1));
  beforeAll(async () => {
    db = await createPgliteDb();
    await migrate(db);
    codes = createCodeService({ db, clock, pepper: randomBytes(32), ttlSeconds: 600, resendCooldownSeconds: 30, maxAttempts: 3, digits: 8 });
  });
  afterAll(async () => {
    await db?.close();
  });

  it('issues, counts, resends on the same budget, expires and consumes once', async () => {
    const a = await codes.issue({ flowId: 'phone-bind:f1', identityId: null, channel: 'sms', destination: '+447700900123' });
    expect(a.code).toMatch(/^\d{8}$/);
    expect(await codes.verify('phone-bind:f1', '00000000' === a.code ? '11111111' : '00000000')).toBe('invalid');
    await expect(codes.resend('phone-bind:f1', 'sms')).rejects.toMatchObject({ code: 'CODE_RESEND_TOO_SOON', headers: { 'Retry-After': '30' } });
    clock.advance(30_000);
    const b = await codes.resend('phone-bind:f1', 'sms');
    expect(b.destination).toBe('+447700900123');
    const { rows } = await db.query<{ attempts: number; sends: number }>("SELECT attempts, sends FROM otp_challenges WHERE flow_id = 'phone-bind:f1'");
    expect(rows[0]).toEqual({ attempts: 1, sends: 2 });
    clock.advance(600_000);
    expect(await codes.verify('phone-bind:f1', b.code)).toBe('expired');
    clock.advance(1000);
    const c = await codes.resend('phone-bind:f1', 'sms');
    expect(await codes.verify('phone-bind:f1', c.code)).toBe('ok');
    expect(await codes.verify('phone-bind:f1', c.code)).toBe('invalid');
  });
});
