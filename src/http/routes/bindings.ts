import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { AppError } from '../../errors.ts';
import type { Queryable } from '../../db/db.ts';
import { readJson } from '../body.ts';
import { requirePermission } from '../middleware/auth.ts';
import { routeDocs, type RouteDoc } from '../openapi/doc.ts';
import { assertHolds } from '../../authz/holdings.ts';
import { ADMIN_ROLE } from '../../rbac/snapshot.ts';
import type { Env, Services } from '../services.ts';

/**
 * Role bindings and direct permissions of a user (issue 11 item 2), each global (`namespace`
 * null) or scoped to one namespace:
 *
 *   GET    /api/users/:id/roles                      → { roles: [{ role, namespace }] }
 *   PUT    /api/users/:id/roles        { role, namespace? }        → the list after
 *   DELETE /api/users/:id/roles?role=&namespace=     → the list after (404 if not bound)
 *   … and the same under /permissions with `permission`.
 *
 * MANAGE_ROLES (ADMIN). Each change runs in one transaction holding the user's row, is audited
 * with the list before and after (`user.roles_changed`, `user.permissions_changed`), and is
 * announced with `rbac.changed()` after the commit: every process's next decision sees it.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const Name = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/);
export const Namespace = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/);

interface Kind {
  path: 'roles' | 'permissions';
  field: 'role' | 'permission';
  table: 'user_roles' | 'user_permissions';
  /** Table whose `name` the value must exist in. */
  names: 'roles' | 'permissions';
  audit: 'user.roles_changed' | 'user.permissions_changed';
}
const KINDS: Kind[] = [
  { path: 'roles', field: 'role', table: 'user_roles', names: 'roles', audit: 'user.roles_changed' },
  { path: 'permissions', field: 'permission', table: 'user_permissions', names: 'permissions', audit: 'user.permissions_changed' },
];

const bodyOf = (k: Kind) => z.object({ [k.field]: Name, namespace: Namespace.nullable().optional().describe('Absent or null: every namespace') }).strict();
const queryOf = (k: Kind) => z.object({ [k.field]: Name, namespace: Namespace.optional() });
const listDoc = (k: Kind) => ({ description: `\`{ ${k.path}: [{ ${k.field}, namespace }] }\` (namespace null: global)`, schema: { jsonSchema: { type: 'object' } } });
const ERRS = ['UNAUTHENTICATED', 'PERMISSION_DENIED', 'STEP_UP_REQUIRED', 'NOT_FOUND'] as const;

export const bindingDocs = routeDocs(
  '/api/users',
  'Administration',
  Object.fromEntries(
    KINDS.flatMap((k) => [
      [`GET /:id/${k.path}`, { summary: `A user's ${k.path === 'roles' ? 'role bindings' : 'direct permissions'}`, auth: 'session', responses: { 200: listDoc(k) }, errors: [...ERRS] } satisfies RouteDoc],
      [`PUT /:id/${k.path}`, { summary: `Grant a ${k.field} (globally or in a namespace); audited with before/after`, auth: 'session', body: bodyOf(k), responses: { 200: listDoc(k) }, errors: [...ERRS, 'VALIDATION_FAILED', 'UNSUPPORTED_MEDIA_TYPE'] } satisfies RouteDoc],
      [`DELETE /:id/${k.path}`, { summary: `Withdraw a ${k.field} (globally or in a namespace); audited with before/after`, auth: 'session', query: queryOf(k), responses: { 200: listDoc(k) }, errors: [...ERRS, 'VALIDATION_FAILED', 'CONFLICT'] } satisfies RouteDoc],
    ]),
  ),
);

async function list(q: Queryable, k: Kind, id: string) {
  const { rows } = await q.query<{ name: string; namespace: string }>(`SELECT ${k.field} AS name, namespace FROM ${k.table} WHERE identity_id = $1 ORDER BY 1, 2`, [id]);
  return rows.map((r) => ({ [k.field]: r.name, namespace: r.namespace === '' ? null : r.namespace }));
}

function userId(c: Context<Env>): string {
  const id = c.req.param('id') ?? '';
  if (!UUID.test(id)) throw new AppError('NOT_FOUND');
  return id;
}

export function bindingRoutes(s: Services) {
  const app = new Hono<Env>();

  /** One change: holds the user's row, so concurrent changes to one user serialise and each audit's before/after is exact. */
  async function change(c: Context<Env>, k: Kind, id: string, name: string, namespace: string | null, action: 'grant' | 'withdraw') {
    const admin = await requirePermission(c, s, 'MANAGE_ROLES');
    // Stops escalation through MANAGE_ROLES: a binding is granted or withdrawn only by someone who
    // holds what it confers, where it applies (ADMIN: only an ADMIN there); an API key counts
    // with its creator's grants cut to its own permission list.
    const conferred =
      k.field === 'permission' ? [name] : (await s.db.query<{ permission: string }>('SELECT permission FROM role_permissions WHERE role = $1', [name])).rows.map((r) => r.permission);
    await assertHolds(s.rbac.snapshot, admin, conferred, { namespace: namespace ?? undefined, adminNeeded: k.field === 'role' && name === ADMIN_ROLE, what: `${k.field} ${name}` });
    const after = await s.db.tx(async (q) => {
      const user = await q.query('SELECT id FROM identities WHERE id = $1 FOR UPDATE', [id]);
      if (!user.rowCount) throw new AppError('NOT_FOUND');
      const before = await list(q, k, id);
      if (action === 'grant') {
        const exists = await q.query(`SELECT 1 FROM ${k.names} WHERE name = $1`, [name]);
        if (!exists.rowCount) throw new AppError('VALIDATION_FAILED', { detail: `${k.field}: no ${k.field} of this name exists` });
        await q.query(`INSERT INTO ${k.table} (identity_id, ${k.field}, namespace) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [id, name, namespace ?? '']);
      } else {
        if (k.field === 'role' && name === ADMIN_ROLE && namespace === null) {
          // Every global ADMIN binding locked: two concurrent withdrawals cannot both pass this check.
          const holders = await q.query<{ identity_id: string }>(`SELECT identity_id FROM user_roles WHERE role = $1 AND namespace = '' FOR UPDATE`, [ADMIN_ROLE]);
          if (holders.rows.some((h) => h.identity_id === id) && holders.rows.length <= 1) throw new AppError('CONFLICT', { detail: 'This is the last global ADMIN binding: grant ADMIN to someone else first.' });
        }
        const r = await q.query(`DELETE FROM ${k.table} WHERE identity_id = $1 AND ${k.field} = $2 AND namespace = $3`, [id, name, namespace ?? '']);
        if (!r.rowCount) throw new AppError('NOT_FOUND', { detail: `The user holds no such ${k.field} binding.` });
      }
      const after = await list(q, k, id);
      if (JSON.stringify(before) !== JSON.stringify(after))
        await s.audit.append({ type: k.audit, actor: admin.identityId, subject: id, reason: action === 'grant' ? 'GRANTED' : 'WITHDRAWN', data: { [k.field]: name, namespace, before, after } }, q);
      return after;
    });
    await s.rbac.changed();
    return c.json({ [k.path]: after });
  }

  for (const k of KINDS) {
    app.get(`/:id/${k.path}`, async (c) => {
      await requirePermission(c, s, 'MANAGE_ROLES');
      const id = userId(c);
      if (!(await s.users.get(id))) throw new AppError('NOT_FOUND');
      return c.json({ [k.path]: await list(s.db, k, id) });
    });
    app.put(`/:id/${k.path}`, async (c) => {
      const id = userId(c);
      const b = (await readJson(c, bodyOf(k))) as Record<string, string | null | undefined>;
      return change(c, k, id, b[k.field]!, b.namespace ?? null, 'grant');
    });
    app.delete(`/:id/${k.path}`, async (c) => {
      const id = userId(c);
      const parsed = queryOf(k).safeParse({ [k.field]: c.req.query(k.field), namespace: c.req.query('namespace') || undefined });
      if (!parsed.success) throw new AppError('VALIDATION_FAILED', { detail: `${k.field} (and optionally namespace) in the query` });
      const v = parsed.data as Record<string, string | undefined>;
      return change(c, k, id, v[k.field]!, v.namespace ?? null, 'withdraw');
    });
  }
  return app;
}
