import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { isUniqueViolation } from '../db/db.ts';
import { AppError } from '../errors.ts';
import { normalizeIdentifier } from '../authn/methods/password/password.ts';
import { atKey, cursor } from '../db/cursor.ts';
import { USER_COLUMNS, userViewOf, type UserRow, type UserView } from './users.ts';

/**
 * What the admin API does to accounts beyond create/get/lock/unlock (src/identity/users.ts):
 * paged listing with an email-prefix search, profile changes, disabling and deletion. Each change
 * answers the account as it was and as it is, for the audit entry's before/after. Ending the
 * account's sessions (and so its tokens) is the caller's job, through the session service's
 * revocation, so every process's caches hear of it at once.
 */
export interface UserListQuery {
  /** Email prefix (case-insensitive). */
  search?: string;
  status?: 'active' | 'disabled';
  locked?: boolean;
  cursor?: string;
  limit: number;
}

export interface UserAdmin {
  /** Oldest first on (created_at, id): accounts created while paging appear on later pages, never twice. */
  list(q: UserListQuery): Promise<{ items: UserView[]; nextCursor: string | null }>;
  update(id: string, change: { email?: string; displayName?: string | null }): Promise<{ before: UserView; after: UserView } | null>;
  setStatus(id: string, status: 'active' | 'disabled'): Promise<{ before: UserView; after: UserView } | null>;
  /** Deletes the identity; its factors, sessions, refresh families, grants and flows go with it (ON DELETE CASCADE). */
  remove(id: string): Promise<UserView | null>;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** LIKE metacharacters in a search are literal. */
const likePrefix = (s: string) => `${s.replace(/[\\%_]/g, (m) => `\\${m}`)}%`;

export function createUserAdmin(deps: { db: Db; clock: Clock }): UserAdmin {
  const { db, clock } = deps;
  const one = async (id: string): Promise<UserView | null> => {
    if (!UUID_RE.test(id)) return null;
    const { rows } = await db.query<UserRow>(`SELECT ${USER_COLUMNS} FROM identities i WHERE i.id = $1`, [id]);
    return rows[0] ? userViewOf(rows[0], clock.now()) : null;
  };
  return {
    async list(q) {
      const where: string[] = [];
      const params: unknown[] = [];
      const p = (v: unknown) => {
        params.push(v);
        return `$${params.length}`;
      };
      if (q.search) where.push(`i.email LIKE ${p(likePrefix(q.search.toLowerCase()))}`);
      if (q.status) where.push(`i.status = ${p(q.status)}`);
      if (q.locked !== undefined) {
        const now = p(new Date(clock.now()));
        const locked = `(i.locked_at IS NOT NULL AND (i.locked_until IS NULL OR i.locked_until > ${now}))`;
        where.push(q.locked ? locked : `NOT ${locked}`);
      }
      if (q.cursor) {
        const c = cursor.timeId(q.cursor);
        where.push(`(i.created_at, i.id) > (${p(c.at)}::timestamptz, ${p(c.id)}::uuid)`);
      }
      const { rows } = await db.query<UserRow & { at_key: string }>(
        `SELECT ${USER_COLUMNS}, ${atKey('i.created_at')} AS at_key FROM identities i
          ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY i.created_at, i.id LIMIT ${p(q.limit + 1)}`,
        params,
      );
      const page = rows.slice(0, q.limit);
      const last = page.at(-1);
      const now = clock.now();
      return { items: page.map((r) => userViewOf(r, now)), nextCursor: rows.length > q.limit && last ? cursor.encode([last.at_key, last.id]) : null };
    },

    async update(id, change) {
      const before = await one(id);
      if (!before) return null;
      const sets: string[] = [];
      const params: unknown[] = [id];
      if (change.email !== undefined) sets.push(`email = $${params.push(normalizeIdentifier(change.email))}`);
      if (change.displayName !== undefined) sets.push(`display_name = $${params.push(change.displayName)}`);
      if (sets.length) {
        try {
          await db.query(`UPDATE identities SET ${sets.join(', ')} WHERE id = $1`, params);
        } catch (e) {
          if (isUniqueViolation(e)) throw new AppError('CONFLICT', { detail: 'A user with this email exists.' });
          throw e;
        }
      }
      const after = await one(id);
      return after ? { before, after } : null;
    },

    async setStatus(id, status) {
      const before = await one(id);
      if (!before) return null;
      await db.query('UPDATE identities SET status = $2 WHERE id = $1', [id, status]);
      const after = await one(id);
      return after ? { before, after } : null;
    },

    async remove(id) {
      const before = await one(id);
      if (!before) return null;
      const r = await db.query('DELETE FROM identities WHERE id = $1', [id]);
      return r.rowCount === 1 ? before : null;
    },
  };
}
