import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/db.ts';
import { AppError } from '../../errors.ts';
import { METHOD_STRENGTH, type MfaMethod } from '../../../machines/types.ts';
import { methodOf, SECOND_FACTOR_METHODS, SECOND_FACTORS, type FactorView } from './registry.ts';

export type { FactorView } from './registry.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** One view over every kind of second factor a user can hold, built from the method registry. */
export interface FactorRegistry {
  list(identityId: string): Promise<FactorView[]>;
  /** Usable methods, strongest first. */
  methodsOf(identityId: string): Promise<MfaMethod[]>;
  /** Confirmed destination for a code channel (the newest bound one). */
  destination(identityId: string, channel: 'sms' | 'email'): Promise<string | null>;
  rename(identityId: string, id: string, label: string): Promise<FactorView>;
  /** Removes one factor; with the last independent factor gone, the dependent ones (recovery codes) go too. */
  remove(identityId: string, id: string): Promise<FactorView>;
}

const SOURCES = SECOND_FACTORS.flatMap((m) => (m.factors ? [m.factors] : []));
/** Which kinds of factor the identity holds, in one statement (every login with a password asks it). */
const HELD_SQL = `SELECT ${SECOND_FACTOR_METHODS.map((m) => {
  const expr = methodOf(m)?.factors?.held[m];
  if (!expr) throw new Error(`method ${m} has no factor source`);
  return `${expr} AS ${m}`;
}).join(',\n       ')}`;

export function createFactorRegistry(deps: { db: Db; clock: Clock }): FactorRegistry {
  const { db } = deps;

  async function list(identityId: string): Promise<FactorView[]> {
    const out: FactorView[] = [];
    for (const s of SOURCES) out.push(...(await s.list(db, identityId)));
    return out.sort((a, b) => METHOD_STRENGTH.indexOf(a.type) - METHOD_STRENGTH.indexOf(b.type));
  }

  async function find(identityId: string, id: string): Promise<FactorView> {
    const f = (await list(identityId)).find((x) => x.id === id);
    if (!f || !UUID.test(id)) throw new AppError('MFA_FACTOR_NOT_FOUND');
    return f;
  }

  /** The table a factor with its own id lives in. */
  const tableOf = (t: MfaMethod): string => {
    const table = methodOf(t)?.factors?.table;
    if (!table) throw new AppError('MFA_FACTOR_NOT_FOUND');
    return table;
  };

  return {
    list,
    async methodsOf(identityId) {
      const { rows } = await db.query<Record<MfaMethod, boolean>>(HELD_SQL, [identityId]);
      const held = rows[0];
      return METHOD_STRENGTH.filter((m) => held?.[m] === true);
    },
    async destination(identityId, channel) {
      const { rows } = await db.query<{ destination: string }>(
        'SELECT destination FROM contact_factors WHERE identity_id = $1 AND channel = $2 AND confirmed_at IS NOT NULL ORDER BY confirmed_at DESC LIMIT 1',
        [identityId, channel],
      );
      return rows[0]?.destination ?? null;
    },
    async rename(identityId, id, label) {
      const f = await find(identityId, id);
      await db.query(`UPDATE ${tableOf(f.type)} SET label = $3 WHERE id = $1 AND identity_id = $2`, [id, identityId, label]);
      return { ...f, label };
    },
    async remove(identityId, id) {
      const f = await find(identityId, id);
      const table = tableOf(f.type);
      await db.tx(async (q) => {
        await q.query(`DELETE FROM ${table} WHERE id = $1 AND identity_id = $2`, [id, identityId]);
        let left = 0;
        for (const s of SOURCES)
          if (s.table && s.usable) left += (await q.query(`SELECT 1 FROM ${s.table} WHERE identity_id = $1 AND ${s.usable} LIMIT 1`, [identityId])).rowCount;
        if (left === 0) for (const s of SOURCES) if (s.dropWhenAlone) await q.query(s.dropWhenAlone, [identityId]);
      });
      return f;
    },
  };
}
