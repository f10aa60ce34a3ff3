import { Hono } from 'hono';
import type { Context } from 'hono';
import { z } from 'zod';
import { readJson } from '../../body.ts';
import { requirePermission } from '../../middleware/auth.ts';
import { AppError } from '../../../errors.ts';
import { isUniqueViolation, type Queryable } from '../../../db/db.ts';
import { routeDocs } from '../../openapi/doc.ts';
import { ADMIN_ERRORS, assertWithin, jsonDoc, reachOf } from './common.ts';
import type { Env, Services } from '../../services.ts';
import type { AnyPrincipal } from '../../../principals/types.ts';

/*
 * /api/roles and /api/permissions. Reading needs MANAGE_USERS (whoever assigns roles must see
 * them); creating, changing and deleting roles changes what everyone may do, so it needs
 * MANAGE_CONFIG. Every change is audited with before/after and announced with rbac.changed(), so
 * every process's next authorization sees it.
 */

const RoleName = z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'UPPER_SNAKE, up to 64 characters');
const PermissionNames = z.array(RoleName).max(200).refine((a) => new Set(a).size === a.length, 'each permission once');

export const RoleCreateSchema = z.strictObject({
  name: RoleName,
  description: z.string().trim().max(500).default(''),
  permissions: PermissionNames.default([]),
});
export const RoleUpdateSchema = z
  .strictObject({ description: z.string().trim().max(500).optional(), permissions: PermissionNames.optional() })
  .refine((v) => v.description !== undefined || v.permissions !== undefined, 'give description or permissions');

const E = ADMIN_ERRORS;
const ROLE = jsonDoc('The role: `{ name, description, permissions: [{ name, requirement }], holders }`');
export const roleDocs = [
  ...routeDocs('/api/roles', 'Administration', {
    'GET /': { summary: 'Roles with their permissions, requirements and number of holders', auth: 'session', responses: { 200: jsonDoc('Roles', 'array') }, errors: [...E] },
    'POST /': { summary: 'Create a role (MANAGE_CONFIG)', auth: 'session', body: RoleCreateSchema, responses: { 201: ROLE }, errors: [...E, 'CONFLICT', 'UNSUPPORTED_MEDIA_TYPE'] },
    'PATCH /:name': { summary: "Change a role's description or replace its permissions (MANAGE_CONFIG)", auth: 'session', body: RoleUpdateSchema, responses: { 200: ROLE }, errors: [...E, 'NOT_FOUND', 'UNSUPPORTED_MEDIA_TYPE'] },
    'DELETE /:name': { summary: 'Delete a role that no user, machine client or workload mapping holds (MANAGE_CONFIG)', auth: 'session', responses: { 204: { description: 'Deleted' } }, errors: [...E, 'NOT_FOUND', 'ROLE_IN_USE'] },
  }),
  ...routeDocs('/api/permissions', 'Administration', {
    'GET /': { summary: 'Permissions with their requirements and the roles that grant them', auth: 'session', responses: { 200: jsonDoc('`[{ name, description, requirement, roles }]`', 'array') }, errors: [...E] },
  }),
];

interface RoleView {
  name: string;
  description: string;
  permissions: { name: string; requirement: unknown }[];
  holders: number;
}

async function readRoles(q: Queryable, name?: string): Promise<RoleView[]> {
  const { rows } = await q.query<RoleView>(
    `SELECT r.name, r.description,
            coalesce((SELECT json_agg(json_build_object('name', p.name, 'requirement', p.requirement) ORDER BY p.name)
                        FROM role_permissions rp JOIN permissions p ON p.name = rp.permission WHERE rp.role = r.name), '[]'::json) AS permissions,
            (SELECT count(*)::int FROM user_roles ur WHERE ur.role = r.name) AS holders
       FROM roles r ${name === undefined ? '' : 'WHERE r.name = $1'} ORDER BY r.name`,
    name === undefined ? [] : [name],
  );
  return rows;
}

/** Refuses (400, naming them) permissions that do not exist: a typo must not become a silent no-op grant. */
async function checkPermissions(q: Queryable, names: string[]): Promise<void> {
  if (!names.length) return;
  const { rows } = await q.query<{ name: string }>('SELECT name FROM permissions WHERE name = ANY($1::text[])', [names]);
  const unknown = names.filter((n) => !rows.some((r) => r.name === n));
  if (unknown.length) throw new AppError('VALIDATION_FAILED', { detail: `permissions: unknown ${unknown.join(', ')}` });
}

async function setPermissions(q: Queryable, role: string, names: string[]): Promise<void> {
  await q.query('DELETE FROM role_permissions WHERE role = $1', [role]);
  if (names.length) await q.query('INSERT INTO role_permissions (role, permission) SELECT $1, unnest($2::text[])', [role, names]);
}

/**
 * Stops a MANAGE_CONFIG holder who is not an ADMIN from granting, to a role they may hold, a
 * permission they do not have: only permissions within the caller's reach go into a role.
 */
async function grantable(s: Services, actor: AnyPrincipal, names: string[]): Promise<void> {
  await checkPermissions(s.db, names); // an unknown name is a 400 naming it, not a refusal
  assertWithin(await reachOf(s, actor), names, 'You cannot grant permissions you do not hold');
}

const nameParam = (v: string) => {
  if (!/^[A-Z][A-Z0-9_]{0,63}$/.test(v)) throw new AppError('NOT_FOUND');
  return v;
};

export function roleRoutes(s: Services) {
  const app = new Hono<Env>();
  const read = (c: Context<Env>) => requirePermission(c, s, 'MANAGE_USERS');
  const manage = (c: Context<Env>) => requirePermission(c, s, 'MANAGE_CONFIG');

  app.get('/roles', async (c) => {
    await read(c);
    return c.json(await readRoles(s.db));
  });

  app.post('/roles', async (c) => {
    const p = await manage(c);
    const b = await readJson(c, RoleCreateSchema);
    await grantable(s, p, b.permissions);
    const after = await s.db.tx(async (q) => {
      await checkPermissions(q, b.permissions);
      try {
        await q.query('INSERT INTO roles (name, description) VALUES ($1, $2)', [b.name, b.description]);
      } catch (e) {
        if (isUniqueViolation(e)) throw new AppError('CONFLICT', { detail: 'A role with this name exists.' });
        throw e;
      }
      await setPermissions(q, b.name, b.permissions);
      return (await readRoles(q, b.name))[0];
    });
    await s.rbac.changed();
    await s.audit.append({ type: 'role.created', actor: p.identityId, subject: b.name, reason: 'ADMIN', data: { after } });
    return c.json(after, 201);
  });

  app.patch('/roles/:name', async (c) => {
    const p = await manage(c);
    const name = nameParam(c.req.param('name'));
    const b = await readJson(c, RoleUpdateSchema);
    if (b.permissions) await grantable(s, p, b.permissions);
    const r = await s.db.tx(async (q) => {
      // The role row locked first: concurrent changes of one role apply one after the other.
      const locked = await q.query('SELECT 1 FROM roles WHERE name = $1 FOR UPDATE', [name]);
      if (!locked.rowCount) return null;
      const before = (await readRoles(q, name))[0];
      if (b.description !== undefined) await q.query('UPDATE roles SET description = $2 WHERE name = $1', [name, b.description]);
      if (b.permissions !== undefined) {
        await checkPermissions(q, b.permissions);
        await setPermissions(q, name, b.permissions);
      }
      return { before, after: (await readRoles(q, name))[0] };
    });
    if (!r) throw new AppError('NOT_FOUND');
    await s.rbac.changed();
    await s.audit.append({ type: 'role.updated', actor: p.identityId, subject: name, reason: 'ADMIN', data: r });
    return c.json(r.after);
  });

  app.delete('/roles/:name', async (c) => {
    const p = await manage(c);
    const name = nameParam(c.req.param('name'));
    const before = await s.db.tx(async (q) => {
      // FOR UPDATE conflicts with the key-share lock a new user_roles row takes on its role: no
      // binding can be added between the check below and the delete (which would cascade it away).
      const locked = await q.query('SELECT 1 FROM roles WHERE name = $1 FOR UPDATE', [name]);
      if (!locked.rowCount) throw new AppError('NOT_FOUND');
      const role = (await readRoles(q, name))[0];
      if (role.holders > 0) throw new AppError('ROLE_IN_USE', { detail: `${role.holders} user(s) hold ${name}.`, extra: { holders: role.holders } });
      // Machines hold roles too, by name (no foreign key): OAuth clients and workload-issuer mappings.
      const machines = await q.query<{ n: number }>(
        `SELECT (SELECT count(*) FROM machine_clients WHERE roles ? $1)
              + (SELECT count(*) FROM trusted_issuers t WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(t.subject_mappings) m WHERE m->'roles' ? $1)) AS n`,
        [name],
      );
      const held = Number(machines.rows[0].n);
      if (held > 0) throw new AppError('ROLE_IN_USE', { detail: `${held} machine client(s) or workload mapping(s) hold ${name}.`, extra: { holders: 0, machines: held } });
      await q.query('DELETE FROM roles WHERE name = $1', [name]);
      return role;
    });
    await s.rbac.changed();
    await s.audit.append({ type: 'role.deleted', actor: p.identityId, subject: name, reason: 'ADMIN', data: { before } });
    return c.body(null, 204);
  });

  app.get('/permissions', async (c) => {
    await read(c);
    const { rows } = await s.db.query(
      `SELECT p.name, p.description, p.requirement,
              coalesce((SELECT json_agg(rp.role ORDER BY rp.role) FROM role_permissions rp WHERE rp.permission = p.name), '[]'::json) AS roles
         FROM permissions p ORDER BY p.name`,
    );
    return c.json(rows);
  });

  return app;
}
