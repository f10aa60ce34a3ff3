import { randomBytes } from 'node:crypto';
import pg from 'pg';
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
  const admin = new pg.Client({ connectionString: TEST_PG_URL });
  await admin.connect();
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
