import { Hono } from 'hono';
import { z } from 'zod';
import { readJson } from '../body.ts';
import { requirePermission } from '../middleware/auth.ts';
import { AppError } from '../../errors.ts';
import { CreateUserSchema } from '../../identity/users.ts';
import { presentSessionListing } from '../present.ts';
import { routeDocs, type RouteDoc } from '../openapi/doc.ts';
import type { Env, Services } from '../services.ts';

const ADMIN = ['UNAUTHENTICATED', 'PERMISSION_DENIED', 'STEP_UP_REQUIRED'] as const;
const obj = (description: string) => ({ description, schema: { jsonSchema: { type: 'object' } } });
const lockDocs = (what: 'users' | 'sessions', ok: RouteDoc['responses']) =>
  Object.fromEntries(
    (['lock', 'unlock'] as const).map((a) => [`POST /${what}/:id/${a}`, { summary: `${a === 'lock' ? 'Lock' : 'Unlock'} a ${what.slice(0, -1)}${a === 'lock' && what === 'users' ? ' (ends its sessions)' : ''}`, auth: 'session', responses: ok, errors: [...ADMIN, 'NOT_FOUND'] } satisfies RouteDoc]),
  );

export const adminDocs = routeDocs('/api', 'Administration', {
  'POST /users': { summary: 'Create a user', auth: 'session', body: CreateUserSchema, responses: { 201: obj('The user: `{ id, email, displayName, roles, status, locked, createdAt }`') }, errors: [...ADMIN, 'CONFLICT', 'PASSWORD_REJECTED', 'UNSUPPORTED_MEDIA_TYPE'] },
  'GET /users/:id': { summary: 'Read a user', auth: 'session', responses: { 200: obj('The user') }, errors: [...ADMIN, 'NOT_FOUND'] },
  ...lockDocs('users', { 200: obj('The user') }),
  'GET /sessions': {
    summary: "A user's sessions, with IPs",
    auth: 'session',
    query: z.object({ userId: z.string().regex(/^[0-9a-f-]{36}$/).describe('The user id') }),
    responses: { 200: { description: 'Session listings', schema: { jsonSchema: { type: 'array', items: { type: 'object' } } } } },
    errors: [...ADMIN],
  },
  'DELETE /sessions/:id': { summary: 'Revoke a session', auth: 'session', responses: { 204: { description: 'Revoked' } }, errors: [...ADMIN, 'NOT_FOUND'] },
  ...lockDocs('sessions', { 204: { description: 'Done' } }),
  'GET /roles': { summary: 'Roles and their permissions', auth: 'session', responses: { 200: { description: '`[{ name, description, permissions }]`', schema: { jsonSchema: { type: 'array', items: { type: 'object' } } } } }, errors: [...ADMIN] },
});

export function adminRoutes(s: Services) {
  const app = new Hono<Env>();

  app.post('/users', async (c) => {
    const admin = await requirePermission(c, s, 'MANAGE_USERS');
    const b = await readJson(c, CreateUserSchema);
    if (b.password !== undefined) await s.passwordPolicy.assertNewPassword({ password: b.password, identifier: b.email, hasSecondFactor: false });
    const u = await s.users.create(b);
    await s.audit.append({ type: 'user.created', actor: admin.identityId, subject: u.id, reason: 'ADMIN', data: { roles: u.roles } });
    return c.json(u, 201);
  });

  app.get('/users/:id', async (c) => {
    await requirePermission(c, s, 'MANAGE_USERS');
    const u = await s.users.get(c.req.param('id'));
    if (!u) throw new AppError('NOT_FOUND');
    return c.json(u);
  });

  for (const action of ['lock', 'unlock'] as const) {
    app.post(`/users/:id/${action}`, async (c) => {
      const admin = await requirePermission(c, s, 'MANAGE_USERS');
      const id = c.req.param('id');
      const ok = /^[0-9a-f-]{36}$/.test(id) && (await s.users[action](id));
      if (!ok) throw new AppError('NOT_FOUND');
      // A locked account keeps no way in: its live sessions (and their tokens) end at once.
      const ended = action === 'lock' ? await s.sessions.revokeAllFor(id, 'account_locked') : [];
      await s.audit.append({ type: `user.${action}ed`, actor: admin.identityId, subject: id, reason: 'ADMIN', data: { endedSessions: ended.length } });
      return c.json((await s.users.get(id))!);
    });
  }

  app.get('/sessions', async (c) => {
    await requirePermission(c, s, 'MANAGE_USERS');
    const userId = c.req.query('userId');
    if (!userId || !/^[0-9a-f-]{36}$/.test(userId)) throw new AppError('VALIDATION_FAILED', { detail: 'userId: a user id is required' });
    return c.json((await s.sessions.listFor(userId)).map((x) => ({ ...presentSessionListing(x), ip: x.ip })));
  });

  app.delete('/sessions/:id', async (c) => {
    const admin = await requirePermission(c, s, 'MANAGE_USERS');
    const id = c.req.param('id');
    if (!/^[0-9a-f-]{36}$/.test(id) || !(await s.sessions.revoke(id, 'admin_revoked'))) throw new AppError('NOT_FOUND');
    await s.audit.append({ type: 'session.revoked', actor: admin.identityId, subject: id, reason: 'ADMIN' });
    return c.body(null, 204);
  });

  for (const action of ['lock', 'unlock'] as const) {
    app.post(`/sessions/:id/${action}`, async (c) => {
      const admin = await requirePermission(c, s, 'MANAGE_USERS');
      const id = c.req.param('id');
      const ok = /^[0-9a-f-]{36}$/.test(id) && (action === 'lock' ? await s.sessions.lock(id, 'admin') : await s.sessions.unlock(id));
      if (!ok) throw new AppError('NOT_FOUND');
      await s.audit.append({ type: `session.${action}ed`, actor: admin.identityId, subject: id, reason: 'ADMIN' });
      return c.body(null, 204);
    });
  }

  app.get('/roles', async (c) => {
    await requirePermission(c, s, 'MANAGE_USERS');
    const { rows } = await s.db.query<{ name: string; description: string; permissions: string[] }>(
      `SELECT r.name, r.description, coalesce(json_agg(rp.permission ORDER BY rp.permission) FILTER (WHERE rp.permission IS NOT NULL), '[]') AS permissions
         FROM roles r LEFT JOIN role_permissions rp ON rp.role = r.name GROUP BY r.name, r.description ORDER BY r.name`,
    );
    return c.json(rows);
  });

  return app;
}
