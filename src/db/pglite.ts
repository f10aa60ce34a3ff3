import { PGlite } from '@electric-sql/pglite';
import type { Db, Queryable } from './db.ts';

/**
 * Embedded Postgres (PGlite) in a data folder, or in memory when dataDir is undefined.
 * PGlite has a single connection: transactions are serialised through it.
 */
export async function createPgliteDb(dataDir?: string): Promise<Db> {
  const pg = new PGlite(dataDir);
  await pg.waitReady;
  const conv = (rows: unknown[]) =>
    rows.map((r) => {
      const o = r as Record<string, unknown>;
      for (const k in o) if (typeof o[k] === 'bigint') o[k] = Number(o[k]);
      return o;
    });
  const wrap = (c: Pick<PGlite, 'query' | 'exec'>): Queryable => ({
    async query<T>(text: string, params?: unknown[]) {
      const r = await c.query(text, params as unknown[]);
      return { rows: conv(r.rows) as T[], rowCount: r.rows.length || r.affectedRows || 0 };
    },
    async exec(sql: string) {
      await c.exec(sql);
    },
  });
  const base = wrap(pg);
  return {
    kind: 'pglite',
    query: base.query,
    exec: base.exec,
    tx: (fn) => pg.transaction((t) => fn(wrap(t))),
    async ping() {
      await pg.query('SELECT 1');
    },
    async close() {
      await pg.close();
    },
  };
}
