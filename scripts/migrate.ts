import { loadConfig, ConfigError } from '../src/config/config.ts';
import { openDb } from '../src/main.ts';
import { migrate } from '../src/db/migrate.ts';

/** `npm run migrate`: apply db/migrations to DATABASE_URL (or the embedded PGlite in DATA_DIR). */
try {
  const config = loadConfig();
  const db = await openDb(config);
  const applied = await migrate(db);
  await db.close();
  process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
} catch (e) {
  process.stderr.write(e instanceof ConfigError ? `${e.message}\n` : `migrate failed: ${e instanceof Error ? e.message : e}\n`);
  process.exit(1);
}
