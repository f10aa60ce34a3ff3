import { Hono } from 'hono';
import { readJson } from '../../http/body.ts';
import { requirePermission } from '../../http/middleware/auth.ts';
import { AppError } from '../../errors.ts';
import { routeDocs } from '../../http/openapi/doc.ts';
import type { Env, Services } from '../../http/services.ts';
import { CLIENT_ID_RE, CreateMachineClientSchema } from './clients.ts';

const PERMISSION = 'MANAGE_CONFIG';
const ADMIN = ['UNAUTHENTICATED', 'PERMISSION_DENIED', 'STEP_UP_REQUIRED'] as const;

export const machineClientDocs = routeDocs('/api/machine-clients', 'Administration', {
  'GET /': { summary: 'Registered machine clients (client_credentials)', auth: 'session', responses: { 200: { description: '`[{ clientId, roles, scopes, enabled, createdAt, lastUsedAt }]`', schema: { jsonSchema: { type: 'array', items: { type: 'object' } } } } }, errors: [...ADMIN] },
  'POST /': {
    summary: 'Register a machine client; its secret is in this answer only',
    auth: 'session',
    body: CreateMachineClientSchema,
    responses: { 201: { description: '`{ clientId, clientSecret, roles, scopes, enabled, createdAt, lastUsedAt }`', schema: { jsonSchema: { type: 'object' } } } },
    errors: [...ADMIN, 'CONFLICT', 'UNSUPPORTED_MEDIA_TYPE'],
  },
  'DELETE /:clientId': { summary: 'Remove a machine client (its grants stop at once; issued tokens live out their lifetime)', auth: 'session', responses: { 204: { description: 'Removed' } }, errors: [...ADMIN, 'NOT_FOUND'] },
});

export function machineClientRoutes(s: Services) {
  const app = new Hono<Env>();
  app.get('/', async (c) => {
    await requirePermission(c, s, PERMISSION);
    return c.json(await s.machineClients.list());
  });
  app.post('/', async (c) => {
    const admin = await requirePermission(c, s, PERMISSION);
    const body = await readJson(c, CreateMachineClientSchema);
    const made = await s.machineClients.create(body);
    await s.audit.append({ type: 'machine_client.created', actor: admin.identityId, subject: made.clientId, reason: 'ADMIN', data: { roles: made.roles, scopes: made.scopes } });
    c.header('Cache-Control', 'no-store');
    return c.json(made, 201);
  });
  app.delete('/:clientId', async (c) => {
    const admin = await requirePermission(c, s, PERMISSION);
    const id = c.req.param('clientId');
    if (!CLIENT_ID_RE.test(id) || !(await s.machineClients.remove(id))) throw new AppError('NOT_FOUND');
    await s.audit.append({ type: 'machine_client.deleted', actor: admin.identityId, subject: id, reason: 'ADMIN' });
    return c.body(null, 204);
  });
  return app;
}
