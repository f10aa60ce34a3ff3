import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createAudit } from '../../src/audit/audit.ts';
import { ManualClock } from '../../src/clock.ts';
import { createPgDb } from '../../src/db/pg.ts';
import type { Db } from '../../src/db/db.ts';
import { createTestDb } from '../helpers/db.ts';

const drops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const d of drops) await d();
});

async function fresh() {
  const t = await createTestDb();
  drops.push(t.drop);
  return t;
}

/** Counts transactions (db.tx) and statements (query) of a Db: the group commit's cost. */
function counting(db: Db) {
  const c = { tx: 0, statements: 0 };
  const wrapped: Db = {
    ...db,
    query: ((sql: string, params?: unknown[]) => {
      c.statements++;
      return db.query(sql, params as never);
    }) as Db['query'],
    tx: ((fn: (q: unknown) => Promise<unknown>) => {
      c.tx++;
      return db.tx((q) =>
        fn({
          ...q,
          query: (sql: string, params?: unknown[]) => {
            c.statements++;
            return q.query(sql, params as never);
          },
        }),
      );
    }) as Db['tx'],
  };
  return { db: wrapped, c };
}

describe('audit group commit (issue 9: appends that do not serialise the world)', () => {
  it('50 concurrent appends from two processes: none lost, the chain verifies, and they share a few transactions', async () => {
    const t = await fresh();
    const clock = new ManualClock();
    const { db, c } = counting(t.db);
    const a = createAudit(db, clock);
    // A second process: its own pool and its own group commit, on the same chain.
    const other = createPgDb(t.url);
    drops.unshift(() => other.close());
    const b = createAudit(other, clock);
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 ? b : a).append({ type: 'login.succeeded', subject: `u-${i}`, data: { i } })),
    );
    const { rows } = await t.db.query<{ n: number; distinct_n: number }>(
      "SELECT count(*)::int AS n, count(DISTINCT (data->>'i'))::int AS distinct_n FROM audit_events",
    );
    expect(rows[0]).toEqual({ n: 50, distinct_n: 50 });
    expect(await a.verify()).toEqual({ ok: true, checked: 50 });
    // 25 appends in this process went out in far fewer transactions than appends.
    expect(c.tx).toBeGreaterThanOrEqual(1);
    expect(c.tx).toBeLessThan(25);
  });

  it('appends inside callers\' transactions (some rolled back) racing group batches from two processes: one chain, no fork', async () => {
    const t = await fresh();
    const clock = new ManualClock();
    const a = createAudit(t.db, clock);
    const other = createPgDb(t.url);
    drops.unshift(() => other.close());
    const b = createAudit(other, clock);
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      const audit = i % 2 ? b : a;
      const db = i % 2 ? other : t.db;
      if (i % 3 === 0) {
        // Inside the caller's transaction, with more work after the append; every fourth rolls back.
        work.push(
          db
            .tx(async (q) => {
              await audit.appendMany([{ type: 'login.succeeded', subject: `tx-${i}`, data: { i } }, { type: 'session.created', subject: `tx-${i}`, data: { i } }], q);
              await q.query('SELECT pg_sleep(0.005)');
              if (i % 4 === 0) throw new Error('rolled back');
            })
            .catch((e: Error) => expect(e.message).toBe('rolled back')),
        );
      } else {
        work.push(audit.append({ type: 'login.failed', subject: `g-${i}`, data: { i } }));
      }
    }
    await Promise.all(work);
    const committedTx = Array.from({ length: 60 }, (_, i) => i).filter((i) => i % 3 === 0 && i % 4 !== 0).length;
    const grouped = Array.from({ length: 60 }, (_, i) => i).filter((i) => i % 3 !== 0).length;
    const { rows } = await t.db.query<{ n: number; heads: number }>(
      'SELECT count(*)::int AS n, (SELECT count(*)::int FROM audit_events x WHERE NOT EXISTS (SELECT 1 FROM audit_events y WHERE y.prev_hash = x.hash)) AS heads FROM audit_events',
    );
    expect(rows[0]).toEqual({ n: committedTx * 2 + grouped, heads: 1 });
    const prevs = await t.db.query<{ dup: number }>('SELECT count(*)::int AS dup FROM (SELECT prev_hash FROM audit_events GROUP BY prev_hash HAVING count(*) > 1) d');
    expect(prevs.rows[0].dup).toBe(0);
    expect(await a.verify()).toEqual({ ok: true, checked: rows[0].n });
  });

  it('appendMany chains its events in order, in one transaction of three statements', async () => {
    const t = await fresh();
    const { db, c } = counting(t.db);
    const a = createAudit(db, new ManualClock());
    await a.appendMany([
      { type: 'login.succeeded', subject: 'u', data: { k: 1 } },
      { type: 'session.created', subject: 'u', data: { k: 2 } },
      { type: 'refresh.issued', subject: 'u', data: { k: 3 } },
    ]);
    expect(c).toEqual({ tx: 1, statements: 2 }); // lock and head in one, then one multi-row insert
    const { rows } = await t.db.query<{ type: string }>('SELECT type FROM audit_events ORDER BY seq');
    expect(rows.map((r) => r.type)).toEqual(['login.succeeded', 'session.created', 'refresh.issued']);
    expect((await a.verify()).ok).toBe(true);
  });

  it('a bad event fails its own caller at once and never the batch it would have joined', async () => {
    const t = await fresh();
    const a = createAudit(t.db, new ManualClock());
    const good = a.append({ type: 'login.succeeded', subject: 'u' });
    await expect(a.append({ type: 'Not A Type' as never })).rejects.toThrow(/noun/);
    await good;
    expect((await a.verify()).checked).toBe(1);
  });

  it('a batch is all or nothing: the backend killed while it commits leaves none of its events, and the chain verifies', async () => {
    const t = await fresh();
    const admin = new pg.Client({ connectionString: t.url });
    await admin.connect();
    try {
      const a = createAudit(t.db, new ManualClock());
      await a.append({ type: 'login.succeeded', subject: 'before' });
      // A deferred trigger makes COMMIT wait, so the batch's rows are inserted but not committed
      // when its backend dies.
      await admin.query(`
        CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.subject LIKE 'batch-%' THEN PERFORM pg_sleep(30); END IF; RETURN NULL; END $$;
        CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON audit_events
          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();`);
      const batch = Array.from({ length: 10 }, (_, i) => a.append({ type: 'login.succeeded', subject: `batch-${i}` }));
      const settled = Promise.allSettled(batch);
      // Wait until the batch sits in its COMMIT (the trigger's sleep), then kill that backend.
      for (let tries = 0; ; tries++) {
        const { rows } = await admin.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND pid <> pg_backend_pid()",
        );
        if (rows[0]) {
          await admin.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
          break;
        }
        if (tries > 2000) throw new Error('the batch never reached its commit');
        await new Promise((r) => setTimeout(r, 5));
      }
      const results = await settled;
      expect(results.every((r) => r.status === 'rejected')).toBe(true);
      await admin.query('DROP TRIGGER slow_commit ON audit_events');
      const { rows } = await admin.query<{ subject: string }>('SELECT subject FROM audit_events ORDER BY seq');
      expect(rows.map((r) => r.subject)).toEqual(['before']);
      // The pool recovered: the next append extends the same valid chain.
      await a.append({ type: 'login.succeeded', subject: 'after' });
      expect(await a.verify()).toEqual({ ok: true, checked: 2 });
    } finally {
      await admin.end();
    }
  });
});
