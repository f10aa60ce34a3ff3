import { loadConfig, ConfigError } from '../src/config/config.ts';
import { openDb } from '../src/db/open.ts';
import { DataDirLockedError } from '../src/db/data-lock.ts';
import { migrate } from '../src/db/migrate.ts';

/**
 * `npm run migrate`: apply db/migrations to DATABASE_URL (or the embedded PGlite in DATA_DIR).
 * The embedded folder belongs to one process: while `npm start` runs on it this refuses (the
 * server migrates at start anyway).
 */
try {
  const config = loadConfig();
  const db = await openDb(config, { command: 'npm run migrate', poolSize: 2 });
  const applied = await migrate(db);
  await db.close();
  process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
} catch (e) {
  if (e instanceof DataDirLockedError)
    process.stderr.write(`migrate refused: ${e.message}\nA running server has already applied every migration it knows at its start.\n`);
  else process.stderr.write(e instanceof ConfigError ? `${e.message}\n` : `migrate failed: ${e instanceof Error ? e.message : e}\n`);
  process.exit(1);
}
