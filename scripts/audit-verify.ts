import { pathToFileURL } from 'node:url';
import { createAudit } from '../src/audit/audit.ts';
import { systemClock } from '../src/clock.ts';
import { DataDirLockedError } from '../src/db/data-lock.ts';
import { migrate } from '../src/db/migrate.ts';
import { openDb } from '../src/db/open.ts';

/**
 * Verify the audit hash chain of the configured database: `DATABASE_URL` if set, else the
 * embedded PGlite in `$DATA_DIR/pglite`. Prints one line; returns 0 when the chain is intact,
 * 1 when it is broken. Connection or migration errors are thrown, and so is DataDirLockedError
 * while a server owns the embedded folder (the script exits 2: it could not check).
 */
export async function runAuditVerify(
  env: Record<string, string | undefined> = process.env,
  print: (line: string) => void = (l) => console.log(l),
): Promise<number> {
  const db = await openDb(
    { DATABASE_URL: env.DATABASE_URL || undefined, DATA_DIR: env.DATA_DIR || './data' },
    { command: 'npm run audit:verify', poolSize: 2 },
  );
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
      if (e instanceof DataDirLockedError)
        console.error(`audit verify refused (not checked): ${e.message}\nStop the server, run npm run audit:verify, start it again.`);
      else console.error(`audit verify failed: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(2);
    },
  );
}
