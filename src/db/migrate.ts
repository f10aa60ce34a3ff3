import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { Db } from './db.ts';

/**
 * db/migrations/ of the project: found by walking up from this file, so the same code finds it
 * from src/db/ (TypeScript) and from dist/src/db/ (compiled JavaScript, which has no SQL copies).
 */
function findMigrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'db', 'migrations');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('db/migrations not found above ' + fileURLToPath(import.meta.url));
}

const MIGRATIONS_DIR = findMigrationsDir();

/**
 * Apply db/migrations/NNNN_*.sql in order, each once, each in its own transaction.
 * An advisory lock keeps two processes starting together from applying one twice.
 */
export async function migrate(db: Db, dir = MIGRATIONS_DIR): Promise<string[]> {
  await db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
  );
  const files = (await readdir(dir)).filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f)).sort();
  const applied: string[] = [];
  for (const f of files) {
    const sql = await readFile(join(dir, f), 'utf8');
    const done = await db.tx(async (q) => {
      await q.query('SELECT pg_advisory_xact_lock(727274)');
      const { rowCount } = await q.query('SELECT 1 FROM schema_migrations WHERE name = $1', [f]);
      if (rowCount > 0) return false;
      await q.exec(sql);
      await q.query('INSERT INTO schema_migrations (name) VALUES ($1)', [f]);
      return true;
    });
    if (done) applied.push(f);
  }
  return applied;
}
