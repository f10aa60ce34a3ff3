import { Hono } from 'hono';
import type { Context } from 'hono';
import { z } from 'zod';
import { readJson } from '../../body.ts';
import { readQuery } from '../../query.ts';
import { requirePermission } from '../../middleware/auth.ts';
import { AppError } from '../../../errors.ts';
import { CreateUserSchema, type UserView } from '../../../identity/users.ts';
import { createUserAdmin } from '../../../identity/user-admin.ts';
import { holdingsOf } from '../../../authz/holdings.ts';
import { routeDocs, type RouteDoc } from '../../openapi/doc.ts';
import { ADMIN_ERRORS, assertWithin, Cursor, heldAnywhere, idParam, jsonDoc, Limit, pageDoc, reachOf } from './common.ts';
import type { Env, Services } from '../../services.ts';
import type { AnyPrincipal } from '../../../principals/types.ts';

/*
 * /api/users (MANAGE_USERS). Every change is audited with the account before and after.
 * Role bindings have their own routes (/api/users/:id/roles); the views here only show them.
 */

export const UserListQuerySchema = z.strictObject({
  search: z.string().trim().min(1).max(254).optional().describe('Email prefix, case-insensitive'),
  status: z.enum(['active', 'disabled']).optional(),
  locked: z.enum(['true', 'false']).transform((v) => v === 'true').optional(),
  cursor: Cursor,
  limit: Limit,
});

export const UserUpdateSchema = z
  .strictObject({
    email: z.string().trim().email().max(254).optional(),
    displayName: z.string().trim().min(1).max(200).nullable().optional(),
  })
  .refine((v) => v.email !== undefined || v.displayName !== undefined, 'give email or displayName');

const USER = jsonDoc('The user: `{ id, email, displayName, roles, status, locked, createdAt }`');
const E = ADMIN_ERRORS;
const change = (summary: string): RouteDoc => ({ summary, auth: 'session', responses: { 200: USER }, errors: [...E, 'NOT_FOUND', 'SELF_ACTION_REFUSED'] });

export const userDocs = routeDocs('/api/users', 'Administration', {
  'GET /': { summary: 'Users, oldest first, in cursor pages; search by email prefix', auth: 'session', query: UserListQuerySchema, responses: { 200: pageDoc('users') }, errors: [...E, 'INVALID_CURSOR'] },
  'POST /': { summary: 'Create a user', auth: 'session', body: CreateUserSchema, responses: { 201: USER }, errors: [...E, 'CONFLICT', 'UNSUPPORTED_MEDIA_TYPE'] },
  'GET /:id': { summary: 'Read a user, with their second factors and live session count', auth: 'session', responses: { 200: jsonDoc('The user, `factors` and `liveSessions`') }, errors: [...E, 'NOT_FOUND'] },
  'PATCH /:id': { summary: "Change a user's email or display name", auth: 'session', body: UserUpdateSchema, responses: { 200: USER }, errors: [...E, 'NOT_FOUND', 'CONFLICT', 'UNSUPPORTED_MEDIA_TYPE'] },
  'DELETE /:id': { summary: 'Delete a user with their sessions, tokens and factors (ends them at once)', auth: 'session', responses: { 204: { description: 'Deleted' } }, errors: [...E, 'NOT_FOUND', 'SELF_ACTION_REFUSED'] },
  'POST /:id/lock': change('Lock a user until an administrator unlocks (ends their sessions)'),
  'POST /:id/unlock': { summary: 'Unlock a user and forgive their recorded failures', auth: 'session', responses: { 200: USER }, errors: [...E, 'NOT_FOUND'] },
  'POST /:id/disable': change('Disable a user (ends their sessions; sign-in refused until enabled)'),
  'POST /:id/enable': { summary: 'Enable a disabled user', auth: 'session', responses: { 200: USER }, errors: [...E, 'NOT_FOUND'] },
});

export function userRoutes(s: Services) {
  const app = new Hono<Env>();
  const admin = createUserAdmin({ db: s.db, clock: s.clock });
  const guard = (c: Context<Env>) => requirePermission(c, s, 'MANAGE_USERS');
  const audit = (type: Parameters<typeof s.audit.append>[0]['type'], actor: string, subject: string, data: Record<string, unknown>) =>
    s.audit.append({ type, actor, subject, reason: 'ADMIN', data });
  /** An administrator cannot shut themselves out (and with them, perhaps, the last way in). */
  const notSelf = (actor: string, id: string) => {
    if (actor === id) throw new AppError('SELF_ACTION_REFUSED');
  };
  /**
   * Stops privilege escalation through user management: whoever holds MANAGE_USERS but not, say,
   * MANAGE_CONFIG must not create an ADMIN, nor take over (change the email of), lock, disable or
   * delete someone who holds more than they do. The actor must hold every permission the target
   * holds (or would hold, for roles given at creation); an ADMIN holds them all.
   */
  const outranks = async (actor: AnyPrincipal, target: { id?: string; roles?: string[] }) => {
    const roles = target.roles ?? [];
    const theirs = target.id
      ? await heldAnywhere(s, target.id)
      : // ADMIN grants every permission, including ones no role_permissions row names.
        (await s.db.query<{ permission: string }>(
          `SELECT name AS permission FROM permissions WHERE $2
           UNION SELECT permission FROM role_permissions WHERE role = ANY($1::text[])`,
          [roles, roles.includes('ADMIN')],
        )).rows.map((r) => r.permission);
    assertWithin(await reachOf(s, actor), theirs, 'The user would hold permissions you do not');
  };
  const found = (u: UserView | null) => {
    if (!u) throw new AppError('NOT_FOUND');
    return u;
  };

  app.get('/', async (c) => {
    await guard(c);
    return c.json(await admin.list(readQuery(c, UserListQuerySchema)));
  });

  app.post('/', async (c) => {
    const p = await guard(c);
    const b = await readJson(c, CreateUserSchema);
    await outranks(p, { roles: b.roles });
    // The rule every new password meets (length, breach corpus, no identifier), on this path too.
    if (b.password !== undefined) await s.passwordPolicy.assertNewPassword({ password: b.password, identifier: b.email, hasSecondFactor: false });
    const u = await s.users.create(b);
    await audit('user.created', p.identityId, u.id, { roles: u.roles, after: u });
    return c.json(u, 201);
  });

  app.get('/:id', async (c) => {
    await guard(c);
    const u = found(await s.users.get(idParam(c.req.param('id'))));
    const [factors, sessions] = await Promise.all([s.factors.list(u.id), s.sessions.listFor(u.id)]);
    return c.json({ ...u, factors, liveSessions: sessions.length });
  });

  app.patch('/:id', async (c) => {
    const p = await guard(c);
    const id = idParam(c.req.param('id'));
    const b = await readJson(c, UserUpdateSchema);
    await outranks(p, { id });
    const r = await admin.update(id, b);
    if (!r) throw new AppError('NOT_FOUND');
    await audit('user.updated', p.identityId, id, { before: r.before, after: r.after });
    return c.json(r.after);
  });

  app.delete('/:id', async (c) => {
    const p = await guard(c);
    const id = idParam(c.req.param('id'));
    found(await s.users.get(id));
    notSelf(p.identityId, id);
    await outranks(p, { id });
    // First end every session through the revocation path (deny-list in every process, refresh
    // families), then delete: forward-auth answers 401 for the user's tokens from this moment.
    const ended = await s.sessions.revokeAllFor(id, 'account_deleted');
    const before = await admin.remove(id);
    if (!before) throw new AppError('NOT_FOUND');
    await s.rbac.changed(); // their grants are gone
    await s.apiKeys.identityChanged(); // and their keys, in every process's key cache
    await audit('user.deleted', p.identityId, id, { before, endedSessions: ended.length });
    return c.body(null, 204);
  });

  for (const action of ['lock', 'unlock'] as const) {
    app.post(`/:id/${action}`, async (c) => {
      const p = await guard(c);
      const id = idParam(c.req.param('id'));
      const before = found(await s.users.get(id));
      if (action === 'lock') notSelf(p.identityId, id);
      await outranks(p, { id });
      if (!(await s.users[action](id))) throw new AppError('NOT_FOUND');
      await s.apiKeys.identityChanged(); // the user's API keys follow at once, in every process
      // A locked account keeps no way in: its live sessions (and their tokens) end at once.
      const ended = action === 'lock' ? await s.sessions.revokeAllFor(id, 'account_locked') : [];
      const after = found(await s.users.get(id));
      await audit(`user.${action}ed`, p.identityId, id, { endedSessions: ended.length, wasLocked: before.locked, before, after });
      return c.json(after);
    });
  }

  for (const [action, status] of [['disable', 'disabled'], ['enable', 'active']] as const) {
    app.post(`/:id/${action}`, async (c) => {
      const p = await guard(c);
      const id = idParam(c.req.param('id'));
      if (action === 'disable') notSelf(p.identityId, id);
      await outranks(p, { id });
      const r = await admin.setStatus(id, status);
      if (!r) throw new AppError('NOT_FOUND');
      await s.apiKeys.identityChanged(); // the user's API keys follow at once, in every process
      // Sessions of a disabled account are refused anyway; revoking them also reaches access
      // tokens and verification caches in every process, and ends their refresh families.
      const ended = action === 'disable' ? await s.sessions.revokeAllFor(id, 'account_disabled') : [];
      await audit(`user.${action}d`, p.identityId, id, { before: r.before, after: r.after, endedSessions: ended.length });
      return c.json(r.after);
    });
  }

  return app;
}
