import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { isUniqueViolation } from '../db/db.ts';
import { AppError } from '../errors.ts';
import { checkPasswordPolicy, normalizeIdentifier, type PasswordService } from '../authn/methods/password/password.ts';

export const CreateUserSchema = z
  .object({
    email: z.string().trim().email().max(254),
    password: z.string().optional(),
    roles: z.array(z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/)).max(20).default([]),
    displayName: z.string().trim().min(1).max(200).optional(),
  })
  .strict();
export type CreateUser = z.infer<typeof CreateUserSchema>;

export interface UserView {
  id: string;
  email: string;
  displayName: string | null;
  roles: string[];
  status: string;
  locked: boolean;
  /** The address was proven (a sign-up code, or a trusted IdP); account linking relies on it. */
  emailVerified: boolean;
  createdAt: string;
}

export interface UserService {
  create(u: CreateUser): Promise<UserView>;
  get(id: string): Promise<UserView | null>;
  byEmail(email: string): Promise<UserView | null>;
  unlock(id: string): Promise<boolean>;
  lock(id: string): Promise<boolean>;
  count(): Promise<number>;
}

/** A row selected with USER_COLUMNS (from `identities i`). */
export interface UserRow {
  id: string; email: string; display_name: string | null; status: string; locked_at: Date | null;
  locked_until: Date | null; created_at: Date; roles: string[] | null; email_verified: boolean;
}

/** The columns of a UserView, for any reader of `identities i` (the admin list reads pages of them). */
export const USER_COLUMNS = `i.id, i.email, i.display_name, i.status, i.locked_at, i.locked_until, i.created_at, i.email_verified,
       (SELECT coalesce(json_agg(role ORDER BY role), '[]'::json) FROM user_roles WHERE identity_id = i.id AND namespace = '') AS roles`;

export function userViewOf(r: UserRow, now: number): UserView {
  return {
    id: r.id,
    email: r.email,
    displayName: r.display_name,
    roles: r.roles ?? [],
    status: r.status,
    locked: r.locked_at !== null && (r.locked_until === null || r.locked_until.getTime() > now),
    emailVerified: r.email_verified === true,
    createdAt: r.created_at.toISOString(),
  };
}

export function createUserService(deps: { db: Db; clock: Clock; passwords: PasswordService }): UserService {
  const { db, clock } = deps;
  const view = async (where: string, arg: string): Promise<UserView | null> => {
    const { rows } = await db.query<UserRow>(`SELECT ${USER_COLUMNS} FROM identities i WHERE ${where}`, [arg]);
    return rows[0] ? userViewOf(rows[0], clock.now()) : null;
  };
  return {
    async create(u) {
      if (u.password !== undefined) checkPasswordPolicy(u.password);
      const known = await db.query<{ name: string }>('SELECT name FROM roles WHERE name = ANY($1::text[])', [u.roles]);
      const unknown = u.roles.filter((r) => !known.rows.some((k) => k.name === r));
      if (unknown.length) throw new AppError('VALIDATION_FAILED', { detail: `Unknown roles: ${unknown.join(', ')}` });
      const id = randomUUID();
      try {
        await db.tx(async (q) => {
          // Unverified until the user proves the address (POST /auth/email/verification): an address an
          // administrator typed may be mistyped, and recovery links and federation linking trust it.
          await q.query('INSERT INTO identities (id, email, display_name, created_at) VALUES ($1, $2, $3, $4)', [
            id,
            normalizeIdentifier(u.email),
            u.displayName ?? null,
            new Date(clock.now()),
          ]);
          for (const r of new Set(u.roles)) await q.query('INSERT INTO user_roles (identity_id, role) VALUES ($1, $2)', [id, r]);
        });
      } catch (e) {
        if (isUniqueViolation(e)) throw new AppError('CONFLICT', { detail: 'A user with this email exists.' });
        throw e;
      }
      if (u.password !== undefined) await deps.passwords.setPassword(id, u.password);
      return (await view('i.id = $1', id)) as UserView;
    },
    get: (id) => (/^[0-9a-f-]{36}$/i.test(id) ? view('i.id = $1', id) : Promise.resolve(null)),
    byEmail: (email) => view('i.email = $1', normalizeIdentifier(email)),
    async unlock(id) {
      // Also forgives the account's recorded failures, or the FAILED_ATTEMPTS risk signal would
      // keep denying an account with no second factor for the rest of its window.
      return db.tx(async (q) => {
        const r = await q.query(
          'UPDATE identities SET locked_at = NULL, locked_until = NULL, failed_attempts = 0, mfa_failed_attempts = 0 WHERE id = $1',
          [id],
        );
        if (r.rowCount !== 1) return false;
        await q.query(
          "UPDATE login_events SET forgiven_at = $2 WHERE identity_id = $1 AND outcome = 'failed' AND forgiven_at IS NULL",
          [id, new Date(clock.now())],
        );
        return true;
      });
    },
    async lock(id) {
      const r = await db.query('UPDATE identities SET locked_at = $2, locked_until = NULL WHERE id = $1', [id, new Date(clock.now())]);
      return r.rowCount === 1;
    },
    async count() {
      const r = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM identities');
      return r.rows[0].n;
    },
  };
}
