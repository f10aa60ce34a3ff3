import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPasswordService, type PasswordService } from '../../src/auth/password.ts';
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

  it('unknown user, known user, disabled user and locked account: the same statements, in the same order', async () => {
    await identity('kim@example.test');
    await identity('lou@example.test', 'disabled');
    await identity('max@example.test');

    const unknown = await statements('nobody@example.test', 'a-wrong-password');
    const known = await statements('kim@example.test', 'a-wrong-password');
    const disabled = await statements('lou@example.test', 'a-wrong-password');
    expect(unknown.r.ok || known.r.ok || disabled.r.ok).toBe(false);
    expect(known.shape.length).toBe(3); // SELECT, reserve UPDATE, lock UPDATE, and nothing else
    expect(known.shape[0]).toMatch(/^SELECT /);
    expect(known.shape.slice(1).every((s) => s.startsWith('UPDATE identities'))).toBe(true);
    expect(unknown.shape).toEqual(known.shape);
    expect(disabled.shape).toEqual(known.shape);
    // The unknown user's UPDATEs match no row; the known user's reserve matched one.
    expect(unknown.rows.slice(1)).toEqual(unknown.rows.slice(1).map(() => 0));
    expect(known.rows[1]).toBe(1);

    // Reach the lock, then keep going: the locking attempt and the locked answers have the same shape too.
    const locking: string[][] = [];
    for (let i = 0; i < 4; i++) locking.push((await statements('max@example.test', 'a-wrong-password')).shape);
    const { rows } = await tdb.db.query<{ locked_at: Date | null }>("SELECT locked_at FROM identities WHERE email = 'max@example.test'");
    expect(rows[0].locked_at).not.toBeNull();
    for (const shape of locking) expect(shape).toEqual(unknown.shape);
    // Even the right password on a locked account costs the same (and is refused).
    const lockedRight = await statements('max@example.test', 'the-right-password');
    expect(lockedRight.r.ok).toBe(false);
    expect(lockedRight.shape).toEqual(unknown.shape);
  });
});
