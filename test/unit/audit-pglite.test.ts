import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAudit } from '../../src/audit/audit.ts';
import { ManualClock } from '../../src/clock.ts';
import type { Db } from '../../src/db/db.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPgliteDb } from '../../src/db/pglite.ts';

// The embedded default must keep the same chain guarantees as Postgres.
describe('audit chain on PGlite (in memory)', () => {
  let db: Db;
  beforeAll(async () => {
    db = await createPgliteDb();
    await migrate(db);
  });
  afterAll(async () => {
    await db.close();
  });

  it('appends, verifies, refuses UPDATE and detects a modified row', async () => {
    const clock = new ManualClock();
    const audit = createAudit(db, clock);
    for (let i = 0; i < 5; i++) {
      clock.advance(1234);
      await audit.append({ type: 'login.succeeded', actor: `u${i}`, data: { i, nested: { b: 1, a: [i] } } });
    }
    await Promise.all([1, 2, 3].map((i) => audit.append({ type: 'session.revoked', data: { i } })));
    expect(await audit.verify()).toEqual({ ok: true, checked: 8 });

    await expect(db.query("UPDATE audit_events SET reason = 'x' WHERE seq = 1")).rejects.toThrow(/append-only/);
    await expect(db.query('DELETE FROM audit_events WHERE seq = 1')).rejects.toThrow(/append-only/);

    await db.exec('ALTER TABLE audit_events DISABLE TRIGGER USER');
    await db.query(`UPDATE audit_events SET data = '{"i": 99}' WHERE seq = 3`);
    await db.exec('ALTER TABLE audit_events ENABLE TRIGGER USER');
    const r = await audit.verify();
    expect(r).toMatchObject({ ok: false, brokenAt: 3, checked: 3 });
    expect(r.problem).toMatch(/hash mismatch/);
  });
});
