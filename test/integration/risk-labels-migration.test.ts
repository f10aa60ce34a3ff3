import { randomBytes, randomUUID } from 'node:crypto';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createPgDb } from '../../src/db/pg.ts';
import { migrate } from '../../src/db/migrate.ts';
import { TEST_PG_URL } from '../helpers/db.ts';

const ALL = fileURLToPath(new URL('../../db/migrations/', import.meta.url));

describe('migration 0030: labels move to the multi-label model', () => {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  let dir = '';
  afterAll(async () => {
    const c = new pg.Client({ connectionString: TEST_PG_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps "this wasn\'t me" reports as strong user_report fraud labels, derived on every event of the flow', async () => {
    const c = new pg.Client({ connectionString: TEST_PG_URL });
    await c.connect();
    await c.query(`CREATE SCHEMA ${schema}`);
    await c.end();
    const u = new URL(TEST_PG_URL);
    u.searchParams.set('options', `-c search_path=${schema}`);
    const db = createPgDb(u.toString());
    try {
      // The database as it was before this branch: migrations up to 0029.
      dir = await mkdtemp(join(tmpdir(), 'mig-'));
      for (const f of await readdir(ALL)) if (/^\d{4}_/.test(f) && f < '0030') await cp(join(ALL, f), join(dir, f));
      await migrate(db, dir);
      const who = randomUUID();
      await db.query("INSERT INTO identities (id, email, created_at) VALUES ($1, 'x@example.test', now())", [who]);
      const stepped = randomUUID();
      const succeeded = randomUUID();
      const other = randomUUID();
      for (const [id, flow, outcome] of [[stepped, 'f1', 'stepped_up'], [succeeded, 'f1', 'succeeded'], [other, 'f2', 'succeeded']]) {
        await db.query('INSERT INTO login_events (id, flow_id, identity_id, outcome, created_at) VALUES ($1, $2, $3, $4, now())', [id, flow, who, outcome]);
      }
      await db.query("INSERT INTO login_event_labels (login_event_id, label, source, created_at) VALUES ($1, 'fraudulent', 'user_report', now())", [succeeded]);

      const applied = await migrate(db);
      expect(applied).toContain('0030_risk_labels.sql');
      const { rows } = await db.query<{ login_event_id: string; label: string; source: string; strength: string }>(
        'SELECT login_event_id, label, source, strength FROM login_event_labels',
      );
      expect(rows).toEqual([{ login_event_id: succeeded, label: 'fraud', source: 'user_report', strength: 'strong' }]);
      const events = await db.query<{ id: string; label: string | null }>('SELECT id, label FROM login_events ORDER BY flow_id, outcome');
      expect(Object.fromEntries(events.rows.map((r) => [r.id, r.label]))).toEqual({ [stepped]: 'fraud', [succeeded]: 'fraud', [other]: null });
      await expect(db.query("UPDATE login_events SET label = 'fraudulent' WHERE id = $1", [other])).rejects.toThrow(/login_events_label_check/);
    } finally {
      await db.close();
    }
  });
});
