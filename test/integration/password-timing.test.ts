import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPasswordService, type PasswordService } from '../../src/authn/methods/password/password.ts';
import type { Db } from '../../src/db/db.ts';
import { createTestDb } from '../helpers/db.ts';
import { OffsetClock } from '../helpers/server.ts';

/** A Db that records the shape of every statement (its text, whitespace folded) and its row count. */
function countingDb(db: Db) {
  const seen: { sql: string; rows: number }[] = [];
  const wrapped: Db = Object.create(db) as Db;
  wrapped.query = (async (text: string, params?: unknown[]) => {
    const r = await db.query(text, params);
    seen.push({ sql: text.replace(/\s+/g, ' ').trim(), rows: r.rowCount });
    return r;
  }) as Db['query'];
  return { db: wrapped, seen };
}

describe('a wrong password costs the same work for known and unknown users', () => {
  let tdb: Awaited<ReturnType<typeof createTestDb>>;
  let passwords: PasswordService;
  let seen: { sql: string; rows: number }[];
  const clock = new OffsetClock();

  const identity = async (email: string, status = 'active') => {
    const { rows } = await tdb.db.query<{ id: string }>(
      `INSERT INTO identities (id, email, status, created_at) VALUES (gen_random_uuid(), $1, $2, now()) RETURNING id`,
      [email, status],
    );
    await passwords.setPassword(rows[0].id, 'the-right-password');
    return rows[0].id;
  };

  /** The statements one verifyLogin ran. */
  const statements = async (identifier: string, password: string) => {
    seen.length = 0;
    const r = await passwords.verifyLogin(identifier, password);
    return { r, shape: seen.map((s) => s.sql), rows: seen.map((s) => s.rows) };
  };

  beforeAll(async () => {
    tdb = await createTestDb();
    const c = countingDb(tdb.db);
    seen = c.seen;
    passwords = await createPasswordService({ db: c.db, clock, concurrency: 2, lockoutThreshold: 3, lockoutSeconds: 600, methodsOf: async () => [] });
  });
  afterAll(async () => tdb?.drop());

  /** What a path costs: its statements by kind, and how many rows it wrote. */
  const cost = (x: { shape: string[]; rows: number[] }) => ({
    kinds: x.shape.map((q) => q.split(' ')[0]),
    written: x.shape.reduce((n, q, i) => n + (q.startsWith('UPDATE') ? x.rows[i] : 0), 0),
  });

  it('unknown user, known user, disabled user and locked account: the same statements and row writes, in the same order', async () => {
    await identity('kim@example.test');
    await identity('lou@example.test', 'disabled');
    await identity('max@example.test');

    const unknown = await statements('nobody@example.test', 'a-wrong-password');
    const known = await statements('kim@example.test', 'a-wrong-password');
    const disabled = await statements('lou@example.test', 'a-wrong-password');
    expect(unknown.r.ok || known.r.ok || disabled.r.ok).toBe(false);
    // SELECT, one row written before the hash check, one after: a write is a WAL flush at
    // commit, so a path that writes nothing answers measurably sooner.
    expect(cost(known)).toEqual({ kinds: ['SELECT', 'UPDATE', 'UPDATE'], written: 2 });
    expect(cost(unknown)).toEqual(cost(known));
    expect(cost(disabled)).toEqual(cost(known));
    // The unknown user's writes went to decoy rows, never to an identity.
    expect(unknown.shape.slice(1).every((q) => q.startsWith('UPDATE password_attempt_decoys'))).toBe(true);
    const { rows: kim } = await tdb.db.query<{ failed_attempts: number }>("SELECT failed_attempts FROM identities WHERE email = 'kim@example.test'");
    expect(kim[0].failed_attempts).toBe(1);

    // Reach the lock, then keep going: the locking attempt and the locked answers cost the same too.
    const locking: ReturnType<typeof cost>[] = [];
    for (let i = 0; i < 4; i++) locking.push(cost(await statements('max@example.test', 'a-wrong-password')));
    const { rows } = await tdb.db.query<{ locked_at: Date | null }>("SELECT locked_at FROM identities WHERE email = 'max@example.test'");
    expect(rows[0].locked_at).not.toBeNull();
    for (const c of locking) expect(c).toEqual(cost(unknown));
    // Even the right password on a locked account costs the same (and is refused).
    const lockedRight = await statements('max@example.test', 'the-right-password');
    expect(lockedRight.r.ok).toBe(false);
    expect(cost(lockedRight)).toEqual(cost(unknown));
  });
});
