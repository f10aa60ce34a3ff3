import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Db } from '../../src/db/db.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPgliteDb } from '../../src/db/pglite.ts';
import { createAudit } from '../../src/audit/audit.ts';
import { createPasswordService } from '../../src/authn/methods/password/password.ts';
import { createRememberedDevices, type RememberedDevices } from '../../src/session/remembered-devices.ts';

// The embedded default runs the remembered-device store (and the password change that forgets
// devices) on PGlite: the data-modifying statements must work there too.
describe('remembered devices on PGlite', () => {
  let db: Db;
  let store: RememberedDevices;
  const clock = new ManualClock(Date.UTC(2026, 3, 1));
  const user = '00000000-0000-4000-8000-0000000000a1';
  beforeAll(async () => {
    db = await createPgliteDb();
    await migrate(db);
    await db.query("INSERT INTO identities (id, email, created_at) VALUES ($1, 'p@example.test', now())", [user]);
    store = createRememberedDevices({ db, clock, audit: createAudit(db, clock), key: randomBytes(32) });
  });
  afterAll(async () => {
    await db?.close();
  });

  it('creates, rotates on use, refuses a replay by forgetting the device, and expires', async () => {
    const a = await store.create({ identityId: user, deviceId: 'device-aaaaaaaaaaaaaaaa', userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Safari/605.1.15', country: 'GB', days: 2 });
    expect((await store.list(user))[0]).toMatchObject({ id: a.id, name: 'Safari on macOS', country: 'GB' });
    expect(await store.use(a.token, 'device-bbbbbbbbbbbbbbbb')).toEqual({ ok: false, reason: 'UNKNOWN' });
    const used = await store.use(a.token, 'device-aaaaaaaaaaaaaaaa');
    expect(used).toMatchObject({ ok: true, rememberedId: a.id, identityId: user });
    expect(await store.isLive(a.id, user, 'device-aaaaaaaaaaaaaaaa')).toBe(true);
    expect(await store.isLive(a.id, user, 'device-bbbbbbbbbbbbbbbb')).toBe(false);
    expect(await store.use(a.token, 'device-aaaaaaaaaaaaaaaa')).toEqual({ ok: false, reason: 'REUSED' });
    expect(await store.list(user)).toEqual([]);
    if (!used.ok) throw new Error('unreachable');
    expect(await store.use(used.token, 'device-aaaaaaaaaaaaaaaa')).toEqual({ ok: false, reason: 'EXPIRED' });

    const b = await store.create({ identityId: user, deviceId: 'device-cccccccccccccccc', userAgent: null, country: null, days: 1 });
    clock.advance(86_400_001);
    expect(await store.use(b.token, 'device-cccccccccccccccc')).toEqual({ ok: false, reason: 'EXPIRED' });
  });

  it('a new password forgets every remembered device in the same statement', async () => {
    await store.create({ identityId: user, deviceId: 'device-dddddddddddddddd', userAgent: null, country: null, days: 30 });
    expect(await store.list(user)).toHaveLength(1);
    const passwords = await createPasswordService({ db, clock, concurrency: 1, lockoutThreshold: 10, lockoutSeconds: 60, methodsOf: async () => [] });
    await passwords.setPassword(user, 'a-brand-new-password');
    expect(await store.list(user)).toEqual([]);
    const { rows } = await db.query<{ revoked_reason: string }>("SELECT revoked_reason FROM remembered_devices WHERE revoked_reason = 'PASSWORD_CHANGED'");
    // This one, and the one of the first test that had expired (not yet revoked).
    expect(rows).toHaveLength(2);
  });
});
