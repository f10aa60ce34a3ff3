import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/config.ts';
import { acquireDataLock, type LockOwner } from './data-lock.ts';
import type { Db } from './db.ts';
import { createPgDb } from './pg.ts';

/**
 * The configured database: PostgreSQL at DATABASE_URL (shared by any number of processes), or
 * the embedded PGlite in DATA_DIR, owned by this process until close() (see data-lock.ts).
 * Throws DataDirLockedError when another process owns the folder.
 */
export async function openDb(
  config: Pick<Config, 'DATABASE_URL' | 'DATA_DIR'>,
  opts: { command: string; poolSize?: number; onStaleLock?: (previous: LockOwner | null) => void },
): Promise<Db> {
  if (config.DATABASE_URL) return createPgDb(config.DATABASE_URL, opts.poolSize);
  await mkdir(config.DATA_DIR, { recursive: true });
  const lock = await acquireDataLock(config.DATA_DIR, { command: opts.command, onStale: opts.onStaleLock });
  let db: Db;
  try {
    // Loaded only for the embedded default: a production process never pays for PGlite.
    const { createPgliteDb } = await import('./pglite.ts');
    db = await createPgliteDb(join(config.DATA_DIR, 'pglite'));
  } catch (e) {
    await lock.release();
    throw e;
  }
  return {
    ...db,
    async close() {
      try {
        await db.close();
      } finally {
        await lock.release();
      }
    },
  };
}
