import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAudit } from '../../src/audit/audit.ts';
import { systemClock } from '../../src/clock.ts';
import type { Db } from '../../src/db/db.ts';
import { runAuditVerify } from '../../scripts/audit-verify.ts';
import { createTestDb } from '../helpers/db.ts';
import { spawnTs } from '../helpers/processes.ts';

describe('audit:verify CLI', () => {
  let db: Db;
  let url: string;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    ({ db, url, drop } = await createTestDb());
    const audit = createAudit(db, systemClock);
    for (let i = 0; i < 3; i++) await audit.append({ type: 'user.created', subject: `u${i}` });
  });
  afterAll(async () => {
    await drop();
  });

  it('returns 0 on an intact chain and 1 after tampering, with one line each', async () => {
    const lines: string[] = [];
    expect(await runAuditVerify({ DATABASE_URL: url }, (l) => lines.push(l))).toBe(0);
    expect(lines).toEqual(['audit chain ok: 3 events']);

    await db.exec('ALTER TABLE audit_events DISABLE TRIGGER USER');
    await db.exec(`UPDATE audit_events SET subject = 'someone-else' WHERE seq = 2`);
    await db.exec('ALTER TABLE audit_events ENABLE TRIGGER USER');

    expect(await runAuditVerify({ DATABASE_URL: url }, (l) => lines.push(l))).toBe(1);
    expect(lines[1]).toMatch(/^audit chain BROKEN at seq 2: /);
  });

  it('runs as a script and exits with the code', async () => {
    const r = await spawnTs({ file: 'scripts/audit-verify.ts' }, { env: { DATABASE_URL: url } }).exited;
    // The previous test broke the chain at seq 2.
    expect(r.code).toBe(1);
    expect(r.out.trim()).toMatch(/^audit chain BROKEN at seq 2: /);
  });
});
