import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createAudit } from '../src/audit/audit.ts';
import { systemClock } from '../src/clock.ts';
import type { Db } from '../src/db/db.ts';
import { migrate } from '../src/db/migrate.ts';
import { createPgDb } from '../src/db/pg.ts';
import { createPgliteDb } from '../src/db/pglite.ts';

/**
 * Verify the audit hash chain of the configured database: `DATABASE_URL` if set, else the
 * embedded PGlite in `$DATA_DIR/pglite`. Prints one line; returns 0 when the chain is intact,
 * 1 when it is broken. Connection or migration errors are thrown.
 */
export async function runAuditVerify(
  env: Record<string, string | undefined> = process.env,
  print: (line: string) => void = (l) => console.log(l),
): Promise<number> {
  const db: Db = env.DATABASE_URL
    ? createPgDb(env.DATABASE_URL, 2)
    : await createPgliteDb(join(env.DATA_DIR || './data', 'pglite'));
  try {
    await migrate(db);
    const r = await createAudit(db, systemClock).verify();
    if (r.ok) {
      print(`audit chain ok: ${r.checked} events`);
      return 0;
    }
    print(`audit chain BROKEN at seq ${r.brokenAt}: ${r.problem}`);
    return 1;
  } finally {
    await db.close().catch(() => {});
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runAuditVerify().then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(`audit verify failed: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(2);
    },
  );
}
