import { afterAll, describe, expect, it } from 'vitest';
import { createAudit, hashRow } from '../../src/audit/audit.ts';
import type { Audit } from '../../src/audit/audit.ts';
import { ManualClock } from '../../src/clock.ts';
import type { Db } from '../../src/db/db.ts';
import { createPgliteDb } from '../../src/db/pglite.ts';
import { migrate } from '../../src/db/migrate.ts';
import { runAuditVerify } from '../../scripts/audit-verify.ts';
import { createTestDb } from '../helpers/db.ts';

const drops: (() => Promise<void>)[] = [];
afterAll(async () => {
  await Promise.all(drops.map((d) => d()));
});

/** A fresh schema with a chain of n events (seq 1..n). */
async function chain(n: number): Promise<{ db: Db; audit: Audit; clock: ManualClock; url: string }> {
  const t = await createTestDb();
  drops.push(t.drop);
  const clock = new ManualClock();
  const audit = createAudit(t.db, clock);
  for (let i = 1; i <= n; i++) {
    clock.advance(1001);
    await audit.append({
      type: i % 2 ? 'login.succeeded' : 'mfa.challenge_failed',
      actor: `user-${i}`,
      subject: i === 3 ? null : `sess-${i}`,
      reason: i % 2 ? null : 'MFA_CODE_INVALID',
      data: { n: i, ip: '203.0.113.7', when: new Date(clock.now()), z: { b: [1, 2], a: 'x' } },
    });
  }
  return { db: t.db, audit, clock, url: t.url };
}

/** Tamper as the table owner would: with the append-only triggers switched off. */
async function asOwner(db: Db, sql: string) {
  await db.exec('ALTER TABLE audit_events DISABLE TRIGGER USER');
  try {
    await db.exec(sql);
  } finally {
    await db.exec('ALTER TABLE audit_events ENABLE TRIGGER USER');
  }
}

describe('audit chain on Postgres', () => {
  it('links 5 appended events from the genesis hash and verifies them', async () => {
    const { db, audit } = await chain(5);
    expect(await audit.verify()).toEqual({ ok: true, checked: 5 });
    const { rows } = await db.query<{ seq: number; prev_hash: string; hash: string; at: Date }>(
      'SELECT seq, prev_hash, hash, at FROM audit_events ORDER BY seq',
    );
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(rows[0].prev_hash).toBe('0'.repeat(64));
    for (let i = 1; i < rows.length; i++) expect(rows[i].prev_hash).toBe(rows[i - 1].hash);
    expect(rows[0].at.toISOString()).toBe(new Date(Date.UTC(2026, 0, 1) + 1001).toISOString());
  });

  it('verifies an empty chain', async () => {
    const { audit } = await chain(0);
    expect(await audit.verify()).toEqual({ ok: true, checked: 0 });
  });

  it('refuses UPDATE, DELETE and TRUNCATE from the application', async () => {
    const { db, audit } = await chain(2);
    await expect(db.query("UPDATE audit_events SET type = 'login.failed' WHERE seq = 1")).rejects.toMatchObject({
      code: '42501',
    });
    await expect(db.query('DELETE FROM audit_events WHERE seq = 2')).rejects.toThrow(/append-only/);
    await expect(db.query('TRUNCATE audit_events')).rejects.toThrow(/append-only/);
    expect(await audit.verify()).toEqual({ ok: true, checked: 2 });
  });

  it('detects modified data at that row', async () => {
    const { db, audit } = await chain(5);
    await asOwner(db, `UPDATE audit_events SET data = jsonb_set(data, '{ip}', '"198.51.100.1"') WHERE seq = 3`);
    const r = await audit.verify();
    expect(r).toMatchObject({ ok: false, brokenAt: 3, checked: 3 });
    expect(r.problem).toMatch(/modified/);
  });

  it('detects a changed type at that row', async () => {
    const { db, audit } = await chain(5);
    await asOwner(db, `UPDATE audit_events SET type = 'login.failed' WHERE seq = 4`);
    expect(await audit.verify()).toMatchObject({ ok: false, brokenAt: 4 });
  });

  it('detects a deleted middle row at the row after it', async () => {
    const { db, audit } = await chain(5);
    await asOwner(db, 'DELETE FROM audit_events WHERE seq = 3');
    const r = await audit.verify();
    expect(r).toMatchObject({ ok: false, brokenAt: 4, checked: 3 });
    expect(r.problem).toMatch(/link broken/);
  });

  it('detects a modified row whose own hash was recomputed, at the next link', async () => {
    const { db, audit } = await chain(5);
    const { rows } = await db.query<Record<string, unknown>>('SELECT * FROM audit_events WHERE seq = 2');
    const r2 = rows[0] as { id: string; at: Date; type: string; actor: string; subject: string; reason: string; prev_hash: string };
    const forged = hashRow({ ...r2, at: r2.at.toISOString(), actor: 'attacker', data: {} });
    await asOwner(db, `UPDATE audit_events SET actor = 'attacker', data = '{}', hash = '${forged}' WHERE seq = 2`);
    expect(await audit.verify()).toMatchObject({ ok: false, brokenAt: 3 });
  });

  it('detects swapped rows', async () => {
    const { db, audit } = await chain(4);
    await asOwner(db, 'UPDATE audit_events SET seq = seq + 100 WHERE seq IN (2, 3)');
    await asOwner(db, 'UPDATE audit_events SET seq = CASE seq WHEN 102 THEN 3 ELSE 2 END WHERE seq > 100');
    expect(await audit.verify()).toMatchObject({ ok: false, brokenAt: 2 });
  });

  it('keeps one unbroken chain under 50 concurrent appends', async () => {
    const { db, audit } = await chain(0);
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => audit.append({ type: 'session.created', subject: `s${i}`, data: { i } })),
    );
    expect(await audit.verify()).toEqual({ ok: true, checked: 50 });
    const { rows } = await db.query<{ n: number; heads: number }>(
      'SELECT count(*)::int AS n, count(DISTINCT prev_hash)::int AS heads FROM audit_events',
    );
    expect(rows[0]).toEqual({ n: 50, heads: 50 });
  });

  it('appends inside the caller transaction: rolled back with it, committed with it', async () => {
    const { db, audit } = await chain(1);
    await expect(
      db.tx(async (q) => {
        await audit.append({ type: 'user.created', subject: 'u-x' }, q);
        throw new Error('business failure');
      }),
    ).rejects.toThrow('business failure');
    await db.tx(async (q) => {
      await audit.append({ type: 'user.created', subject: 'u-y' }, q);
      await audit.append({ type: 'user.locked', subject: 'u-y', data: { role: 'admin' } }, q);
    });
    const { rows } = await db.query<{ subject: string }>('SELECT subject FROM audit_events ORDER BY seq');
    expect(rows.map((r) => r.subject)).toEqual(['sess-1', 'u-y', 'u-y']);
    // The rolled-back append consumed a seq value: gaps are not breaks.
    expect(await audit.verify()).toEqual({ ok: true, checked: 3 });
  });

  it('refuses to append in a REPEATABLE READ transaction whose snapshot could miss the head', async () => {
    const { db, audit } = await chain(0);
    await expect(
      db.tx(async (q) => {
        await q.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
        await audit.append({ type: 'user.created' }, q);
      }),
    ).rejects.toThrow(/READ COMMITTED/);
  });

  it('rejects a malformed type and non-object data', async () => {
    const { audit } = await chain(0);
    await expect(audit.append({ type: 'LoginSucceeded' as never })).rejects.toThrow(TypeError);
    await expect(audit.append({ type: 'login.succeeded', data: [1] as unknown as Record<string, unknown> })).rejects.toThrow(
      TypeError,
    );
  });

  it('verifies across page boundaries', async () => {
    const { db, audit } = await chain(0);
    for (let i = 0; i < 1203; i += 200) {
      await Promise.all(
        Array.from({ length: Math.min(200, 1203 - i) }, (_, j) => audit.append({ type: 'refresh.issued', data: { k: i + j } })),
      );
    }
    expect(await audit.verify()).toEqual({ ok: true, checked: 1203 });
    await asOwner(db, `UPDATE audit_events SET data = '{"k": -1}' WHERE seq = 1101`);
    expect(await audit.verify()).toMatchObject({ ok: false, brokenAt: 1101, checked: 1101 });
  });

  // Issue 7 item 1: one permission name with a lone surrogate used to break the chain for good.
  it('stores and hashes the same text when events carry NUL or lone surrogates, so the chain still verifies', async () => {
    const { db, audit, url } = await chain(2);
    await audit.append({
      type: 'authorization.denied',
      actor: 'user-\u0000x',
      subject: 'perm-\ud800',
      reason: 'R\udc00',
      data: { ['k\ud83d']: 'v\u0000\ude00', pair: 'ok \ud83d\ude00', list: ['\ud800', 1] },
    });
    await audit.append({ type: 'login.succeeded', subject: 'after' });
    expect(await audit.verify()).toEqual({ ok: true, checked: 4 });
    const lines: string[] = [];
    expect(await runAuditVerify({ DATABASE_URL: url }, (l) => lines.push(l))).toBe(0);
    expect(lines).toEqual(['audit chain ok: 4 events']);
    const { rows } = await db.query<{ actor: string; subject: string; reason: string; data: Record<string, unknown> }>(
      'SELECT actor, subject, reason, data FROM audit_events WHERE seq = 3',
    );
    expect(rows[0]).toEqual({
      actor: 'user-\ufffdx',
      subject: 'perm-\ufffd',
      reason: 'R\ufffd',
      data: { ['k\ufffd']: 'v\ufffd\ufffd', pair: 'ok \ud83d\ude00', list: ['\ufffd', 1] },
    });
  });

  it('does the same on PGlite', async () => {
    const db = await createPgliteDb();
    try {
      await migrate(db);
      const audit = createAudit(db, new ManualClock());
      await audit.append({ type: 'authorization.denied', subject: '\ud800', data: { p: 'x\u0000\udfff' } });
      await audit.append({ type: 'login.succeeded', subject: 'after' });
      expect(await audit.verify()).toEqual({ ok: true, checked: 2 });
    } finally {
      await db.close();
    }
  });
});
