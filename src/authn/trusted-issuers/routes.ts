import { Hono } from 'hono';
import { readJson } from '../../http/body.ts';
import { requirePermission } from '../../http/middleware/auth.ts';
import { AppError } from '../../errors.ts';
import { routeDocs } from '../../http/openapi/doc.ts';
import type { Env, Services } from '../../http/services.ts';
import { IssuerInputSchema } from './registry.ts';

/** Trusted issuers are configuration: MANAGE_CONFIG (the ADMIN role). */
const PERMISSION = 'MANAGE_CONFIG';
const ADMIN = ['UNAUTHENTICATED', 'PERMISSION_DENIED', 'STEP_UP_REQUIRED'] as const;
const issuerDoc = { description: 'The issuer: the body plus `id`, `source` (`api` | `file`), `createdAt`, `updatedAt`', schema: { jsonSchema: { type: 'object' } } };

export const trustedIssuerDocs = routeDocs('/api/trusted-issuers', 'Administration', {
  'GET /': { summary: 'Trusted token issuers (token exchange, okta scheme, workload tokens)', auth: 'session', responses: { 200: { description: 'The issuers', schema: { jsonSchema: { type: 'array', items: { type: 'object' } } } } }, errors: [...ADMIN] },
  'POST /': {
    summary: 'Trust a token issuer',
    description: 'Keys come from `jwksUri` or the discovery document at `discoveryUrl` (whose `issuer` must match). `algorithms` are asymmetric only. Workload issuers map subjects (`system:serviceaccount:<ns>:<name>`, a trailing `*` allowed) to roles and namespaces.',
    auth: 'session',
    body: IssuerInputSchema,
    responses: { 201: issuerDoc },
    errors: [...ADMIN, 'CONFLICT', 'UNSUPPORTED_MEDIA_TYPE'],
  },
  'GET /:id': { summary: 'Read a trusted issuer', auth: 'session', responses: { 200: issuerDoc }, errors: [...ADMIN, 'NOT_FOUND'] },
  'PUT /:id': { summary: 'Replace a trusted issuer (not one from TRUSTED_ISSUERS_FILE)', auth: 'session', body: IssuerInputSchema, responses: { 200: issuerDoc }, errors: [...ADMIN, 'NOT_FOUND', 'CONFLICT', 'UNSUPPORTED_MEDIA_TYPE'] },
  'DELETE /:id': { summary: 'Stop trusting an issuer (not one from TRUSTED_ISSUERS_FILE)', auth: 'session', responses: { 204: { description: 'Removed' } }, errors: [...ADMIN, 'NOT_FOUND', 'CONFLICT'] },
});

export function trustedIssuerRoutes(s: Services) {
  const app = new Hono<Env>();
  const reg = s.trusted.registry;
  const fileManaged = () => new AppError('CONFLICT', { detail: 'This issuer comes from TRUSTED_ISSUERS_FILE; change the file.' });

  app.get('/', async (c) => {
    await requirePermission(c, s, PERMISSION);
    return c.json(await reg.list());
  });

  app.post('/', async (c) => {
    const admin = await requirePermission(c, s, PERMISSION);
    const body = await readJson(c, IssuerInputSchema);
    if ((await reg.list()).some((i) => i.issuer === body.issuer)) throw new AppError('CONFLICT', { detail: 'This issuer is already trusted; PUT to change it.' });
    const r = await reg.upsert(body, 'api');
    if (r === 'file_managed') throw fileManaged();
    await s.audit.append({ type: 'trusted_issuer.created', actor: admin.identityId, subject: r.issuer.id, reason: 'ADMIN', data: { after: r.issuer } });
    return c.json(r.issuer, 201);
  });

  app.get('/:id', async (c) => {
    await requirePermission(c, s, PERMISSION);
    const i = await reg.get(c.req.param('id'));
    if (!i) throw new AppError('NOT_FOUND');
    return c.json(i);
  });

  app.put('/:id', async (c) => {
    const admin = await requirePermission(c, s, PERMISSION);
    const before = await reg.get(c.req.param('id'));
    if (!before) throw new AppError('NOT_FOUND');
    const body = await readJson(c, IssuerInputSchema);
    if (before.source === 'file') throw fileManaged();
    if (body.issuer !== before.issuer) throw new AppError('VALIDATION_FAILED', { detail: 'issuer: cannot be changed; create another issuer' });
    const r = await reg.upsert(body, 'api');
    if (r === 'file_managed') throw fileManaged();
    s.trusted.jwks.forget(before.issuer);
    await s.audit.append({ type: 'trusted_issuer.updated', actor: admin.identityId, subject: before.id, reason: 'ADMIN', data: { before, after: r.issuer } });
    return c.json(r.issuer);
  });

  app.delete('/:id', async (c) => {
    const admin = await requirePermission(c, s, PERMISSION);
    const r = await reg.remove(c.req.param('id'));
    if (!r) throw new AppError('NOT_FOUND');
    if (r === 'file_managed') throw fileManaged();
    s.trusted.jwks.forget(r.issuer);
    await s.audit.append({ type: 'trusted_issuer.deleted', actor: admin.identityId, subject: r.id, reason: 'ADMIN', data: { before: r } });
    return c.body(null, 204);
  });

  return app;
}
