import { Hono } from 'hono';
import { z } from 'zod';
import { readJson } from '../../http/body.ts';
import { requirePermission } from '../../http/middleware/auth.ts';
import { AppError } from '../../errors.ts';
import { routeDocs } from '../../http/openapi/doc.ts';
import type { Env, Services } from '../../http/services.ts';
import { CreateProviderSchema, MappingSchema, presentMapping, presentProvider, UpdateProviderSchema } from './providers.ts';
import { OrganisationSchema } from './organisations.ts';

const ADMIN = ['UNAUTHENTICATED', 'PERMISSION_DENIED', 'STEP_UP_REQUIRED'] as const;
const obj = (description: string) => ({ description, schema: { jsonSchema: { type: 'object' } } });
const list = (description: string) => ({ description, schema: { jsonSchema: { type: 'array', items: { type: 'object' } } } });
const ActiveSchema = z.object({ active: z.boolean() }).strict();
const PERMISSION = 'MANAGE_IDPS';

export const idpAdminDocs = routeDocs('/api', 'Identity providers', {
  'GET /idps': { summary: 'Identity providers (settings without secrets)', auth: 'session', responses: { 200: list('Providers') }, errors: [...ADMIN] },
  'POST /idps': {
    summary: 'Configure an identity provider',
    description: 'OIDC `settings`: `{ issuer, clientId, clientSecret?, tokenAuthMethod?, scopes?, claims?, useUserinfo? }`; the client secret is sealed at rest and never answered (`clientSecretSet`).',
    auth: 'session',
    body: CreateProviderSchema,
    responses: { 201: obj('The provider') },
    errors: [...ADMIN, 'CONFLICT', 'UNSUPPORTED_MEDIA_TYPE'],
  },
  'GET /idps/:id': { summary: 'Read an identity provider', auth: 'session', responses: { 200: obj('The provider') }, errors: [...ADMIN, 'NOT_FOUND'] },
  'PATCH /idps/:id': {
    summary: 'Change an identity provider (settings are merged; the secret stays unless a new one is sent)',
    auth: 'session',
    body: UpdateProviderSchema,
    responses: { 200: obj('The provider') },
    errors: [...ADMIN, 'NOT_FOUND', 'UNSUPPORTED_MEDIA_TYPE'],
  },
  'DELETE /idps/:id': { summary: 'Remove an identity provider (its mapped roles go with it)', auth: 'session', responses: { 204: { description: 'Removed' } }, errors: [...ADMIN, 'NOT_FOUND'] },
  'GET /idps/:id/mappings': { summary: 'Group → role mappings of a provider', auth: 'session', responses: { 200: list('Mappings') }, errors: [...ADMIN, 'NOT_FOUND'] },
  'POST /idps/:id/mappings': { summary: 'Map an IdP group to a role', auth: 'session', body: MappingSchema, responses: { 201: obj('The mapping') }, errors: [...ADMIN, 'NOT_FOUND', 'CONFLICT', 'UNSUPPORTED_MEDIA_TYPE'] },
  'PATCH /idps/:id/mappings/:mappingId': { summary: '(De)activate a mapping', auth: 'session', body: ActiveSchema, responses: { 200: obj('The mapping') }, errors: [...ADMIN, 'NOT_FOUND', 'UNSUPPORTED_MEDIA_TYPE'] },
  'DELETE /idps/:id/mappings/:mappingId': { summary: 'Remove a mapping', auth: 'session', responses: { 204: { description: 'Removed' } }, errors: [...ADMIN, 'NOT_FOUND'] },
  'GET /organisations': { summary: 'Organisations with their email domains and IdP', auth: 'session', responses: { 200: list('Organisations') }, errors: [...ADMIN] },
  'POST /organisations': { summary: 'Create an organisation (home-realm discovery by its domains)', auth: 'session', body: OrganisationSchema, responses: { 201: obj('The organisation') }, errors: [...ADMIN, 'CONFLICT', 'UNSUPPORTED_MEDIA_TYPE'] },
  'DELETE /organisations/:id': { summary: 'Remove an organisation', auth: 'session', responses: { 204: { description: 'Removed' } }, errors: [...ADMIN, 'NOT_FOUND'] },
});

/** /api/idps and /api/organisations: ADMIN (MANAGE_IDPS); every change audited. */
export function idpAdminRoutes(s: Services) {
  const app = new Hono<Env>();
  const { providers, organisations } = s.federation;
  const provider = async (id: string) => {
    const p = await providers.get(id);
    if (!p) throw new AppError('NOT_FOUND');
    return p;
  };

  app.get('/idps', async (c) => {
    await requirePermission(c, s, PERMISSION);
    return c.json((await providers.list()).map(presentProvider));
  });
  app.post('/idps', async (c) => {
    const admin = await requirePermission(c, s, PERMISSION);
    const p = await providers.create(await readJson(c, CreateProviderSchema));
    await s.audit.append({ type: 'idp.created', actor: admin.identityId, subject: p.id, reason: 'ADMIN', data: { slug: p.slug, type: p.type } });
    return c.json(presentProvider(p), 201);
  });
  app.get('/idps/:id', async (c) => {
    await requirePermission(c, s, PERMISSION);
    return c.json(presentProvider(await provider(c.req.param('id'))));
  });
  app.patch('/idps/:id', async (c) => {
    const admin = await requirePermission(c, s, PERMISSION);
    const patch = await readJson(c, UpdateProviderSchema);
    const p = await providers.update(c.req.param('id'), patch);
    // Which fields changed, never their values (settings may carry a new secret).
    await s.audit.append({ type: 'idp.updated', actor: admin.identityId, subject: p.id, reason: 'ADMIN', data: { slug: p.slug, fields: Object.keys(patch).sort() } });
    return c.json(presentProvider(p));
  });
  app.delete('/idps/:id', async (c) => {
    const admin = await requirePermission(c, s, PERMISSION);
    const p = await provider(c.req.param('id'));
    if (!(await providers.remove(p.id))) throw new AppError('NOT_FOUND');
    await s.audit.append({ type: 'idp.deleted', actor: admin.identityId, subject: p.id, reason: 'ADMIN', data: { slug: p.slug } });
    // Roles it had mapped went with it.
    await s.rbac.changed();
    return c.body(null, 204);
  });

  app.get('/idps/:id/mappings', async (c) => {
    await requirePermission(c, s, PERMISSION);
    const p = await provider(c.req.param('id'));
    return c.json((await providers.mappings.list(p.id)).map(presentMapping));
  });
  app.post('/idps/:id/mappings', async (c) => {
    const admin = await requirePermission(c, s, PERMISSION);
    const p = await provider(c.req.param('id'));
    const m = await providers.mappings.add(p.id, await readJson(c, MappingSchema));
    await s.audit.append({ type: 'idp_mapping.created', actor: admin.identityId, subject: m.id, reason: 'ADMIN', data: { provider: p.slug, group: m.group_name, role: m.role } });
    return c.json(presentMapping(m), 201);
  });
  app.patch('/idps/:id/mappings/:mappingId', async (c) => {
    const admin = await requirePermission(c, s, PERMISSION);
    const p = await provider(c.req.param('id'));
    const { active } = await readJson(c, ActiveSchema);
    const m = await providers.mappings.setActive(p.id, c.req.param('mappingId'), active);
    if (!m) throw new AppError('NOT_FOUND');
    await s.audit.append({ type: 'idp_mapping.updated', actor: admin.identityId, subject: m.id, reason: 'ADMIN', data: { provider: p.slug, active } });
    return c.json(presentMapping(m));
  });
  app.delete('/idps/:id/mappings/:mappingId', async (c) => {
    const admin = await requirePermission(c, s, PERMISSION);
    const p = await provider(c.req.param('id'));
    const id = c.req.param('mappingId');
    if (!(await providers.mappings.remove(p.id, id))) throw new AppError('NOT_FOUND');
    await s.audit.append({ type: 'idp_mapping.deleted', actor: admin.identityId, subject: id, reason: 'ADMIN', data: { provider: p.slug } });
    return c.body(null, 204);
  });

  app.get('/organisations', async (c) => {
    await requirePermission(c, s, PERMISSION);
    return c.json(await organisations.list());
  });
  app.post('/organisations', async (c) => {
    const admin = await requirePermission(c, s, PERMISSION);
    const o = await organisations.create(await readJson(c, OrganisationSchema));
    await s.audit.append({ type: 'organisation.created', actor: admin.identityId, subject: o.id, reason: 'ADMIN', data: { slug: o.slug, provider: o.provider, domains: o.domains } });
    return c.json(o, 201);
  });
  app.delete('/organisations/:id', async (c) => {
    const admin = await requirePermission(c, s, PERMISSION);
    const id = c.req.param('id');
    if (!(await organisations.remove(id))) throw new AppError('NOT_FOUND');
    await s.audit.append({ type: 'organisation.deleted', actor: admin.identityId, subject: id, reason: 'ADMIN' });
    return c.body(null, 204);
  });

  return app;
}
