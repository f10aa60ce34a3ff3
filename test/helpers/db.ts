import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import { createPgDb } from '../../src/db/pg.ts';
import { migrate } from '../../src/db/migrate.ts';
import type { Db } from '../../src/db/db.ts';

export const TEST_PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A migrated, private schema on the real test Postgres, so test files running in parallel
 * never see each other's rows. `url` connects with that schema on the search path.
 */
export async function createTestDb(): Promise<{ db: Db; url: string; schema: string; drop: () => Promise<void> }> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_PG_URL, connectionTimeoutMillis: 5000 });
  await admin.connect().catch((e: Error) => {
    throw new Error(
      `PostgreSQL is not reachable at ${TEST_PG_URL} (${e.message}). The tests need PostgreSQL with a \`test\` database ` +
        `(trust auth), or TEST_DATABASE_URL; see README "The two commands".`,
    );
  });
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const u = new URL(TEST_PG_URL);
  u.searchParams.set('options', `-c search_path=${schema}`);
  const url = u.toString();
  const db = createPgDb(url);
  await migrate(db);
  return {
    db,
    url,
    schema,
    async drop() {
      await db.close().catch(() => {});
      const c = new pg.Client({ connectionString: TEST_PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}

/** A unique BullMQ queue / key prefix per test. */
export const uniqueName = (base: string) => `${base}-${randomBytes(5).toString('hex')}`;

/** Fails with words, not a connection-refused stack, when the test Redis is not running. */
export async function assertTestRedis(): Promise<void> {
  const r = new Redis(TEST_REDIS_URL, { lazyConnect: true, connectTimeout: 3000, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  r.on('error', () => {});
  try {
    await r.connect();
    await r.ping();
  } catch (e) {
    throw new Error(`Redis is not reachable at ${TEST_REDIS_URL} (${(e as Error).message}). The tests need Redis, or TEST_REDIS_URL; see README "The two commands".`);
  } finally {
    r.disconnect();
  }
}
