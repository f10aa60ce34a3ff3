import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { AppError } from '../../errors.ts';
import { readJson } from '../../http/body.ts';
import { requirePrincipal } from '../../http/middleware/auth.ts';
import { routeDocs } from '../../http/openapi/doc.ts';
import type { Env, Services } from '../../http/services.ts';
import { parseCidrs } from '../../risk/cidr.ts';
import { presentApiKey } from './service.ts';
import { assertWithin, heldAnywhere, reachOf } from '../../http/routes/admin/common.ts';
import type { ApiKeyRecord } from './store.ts';

/**
 * /api/api-keys: a signed-in user (a session; a key cannot mint keys) creates keys for
 * themselves, or, holding MANAGE_API_KEYS, for another identity (a service). The secret is in
 * the 201 answer only. A key is visible to whom it stands for, its creator and MANAGE_API_KEYS.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const cidr = z.string().max(64).refine((v) => {
  try {
    return v.toLowerCase() !== 'loopback' && parseCidrs(v).length === 1;
  } catch {
    return false;
  }
}, 'an IPv4 or IPv6 address or CIDR');

export const CreateApiKeySchema = z
  .object({
    name: z.string().trim().min(1).max(100),
    permissions: z.array(z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/)).min(1).max(50).describe("A subset of the creator's permissions"),
    identityId: z.string().regex(UUID).optional().describe('The identity (a service) the key stands for; needs MANAGE_API_KEYS unless it is yourself'),
    expiresInSeconds: z.number().int().min(60).max(2 * 365 * 86400).optional(),
    allowedCidrs: z.array(cidr).max(50).optional().describe('Addresses the key may be used from; absent or empty: any'),
    rateLimitPerMinute: z.number().int().min(1).max(100_000).optional().describe('Requests per minute; default API_KEY_RATE_LIMIT_PER_MINUTE'),
  })
  .strict();
const RotateSchema = z.object({ overlapSeconds: z.number().int().min(0).max(7 * 86400).optional().describe('How long the old key keeps working; default 3600') }).strict();

const keyDoc = (d: string) => ({ description: d, schema: { jsonSchema: { type: 'object' } } });
const ERRS = ['UNAUTHENTICATED', 'PERMISSION_DENIED', 'NOT_FOUND'] as const;

export const apiKeyDocs = routeDocs('/api/api-keys', 'API keys', {
  'POST /': { summary: 'Create an API key (the secret is shown once)', auth: 'session', body: CreateApiKeySchema, responses: { 201: keyDoc('`{ key, id, name, prefix, identityId, createdBy, permissions, allowedCidrs, rateLimitPerMinute, expiresAt, … }`') }, errors: ['UNAUTHENTICATED', 'PERMISSION_DENIED', 'VALIDATION_FAILED', 'UNSUPPORTED_MEDIA_TYPE'] },
  'GET /': { summary: 'Keys that stand for you or that you created', auth: 'session', query: z.object({ identityId: z.string().regex(UUID).optional().describe("Another identity's keys (MANAGE_API_KEYS)") }), responses: { 200: { description: 'Keys', schema: { jsonSchema: { type: 'array', items: { type: 'object' } } } } }, errors: ['UNAUTHENTICATED', 'PERMISSION_DENIED'] },
  'GET /:id': { summary: 'A key with its usage (count, last used, last address, per-day counts of 30 days)', auth: 'session', responses: { 200: keyDoc('The key and `usage: { count, lastUsedAt, lastIp, daily: [{ day, count }] }`') }, errors: [...ERRS] },
  'POST /:id/rotate': { summary: 'Rotate: a new key now; the old one works until the overlap ends', auth: 'session', body: RotateSchema, responses: { 201: keyDoc('The new key with its secret (shown once)') }, errors: [...ERRS, 'CONFLICT', 'VALIDATION_FAILED', 'UNSUPPORTED_MEDIA_TYPE'] },
  'DELETE /:id': { summary: 'Revoke a key, at once in every process', auth: 'session', responses: { 204: { description: 'Revoked' } }, errors: [...ERRS, 'CONFLICT'] },
});

export function apiKeyRoutes(s: Services) {
  const app = new Hono<Env>();
  const noStore = (c: Context<Env>) => c.header('Cache-Control', 'no-store');
  const manager = async (identityId: string) => (await s.rbac.snapshot.resolve(identityId, 'MANAGE_API_KEYS')).via !== undefined;

  /** A key the caller may see and change: theirs, made by them, or any with MANAGE_API_KEYS. Else 404 (no probing of ids). */
  async function visibleKey(c: Context<Env>): Promise<{ me: string; key: ApiKeyRecord }> {
    const me = (await requirePrincipal(c, s)).identityId;
    const id = c.req.param('id') ?? '';
    const key = UUID.test(id) ? await s.apiKeys.store.byId(id) : null;
    if (!key || (key.identityId !== me && key.createdBy !== me && !(await manager(me)))) throw new AppError('NOT_FOUND');
    return { me, key };
  }

  app.post('/', async (c) => {
    const b = await readJson(c, CreateApiKeySchema);
    const me = (await requirePrincipal(c, s)).identityId;
    if (b.identityId && b.identityId !== me) {
      if (!(await manager(me))) throw new AppError('PERMISSION_DENIED', { detail: 'identityId: keys for another identity need MANAGE_API_KEYS' });
      if (!(await s.users.get(b.identityId))) throw new AppError('VALIDATION_FAILED', { detail: 'identityId: no such identity' });
      // Stops impersonation: a key stands for its identity (X-Auth-User, audit, "me" routes), so
      // it may be made only for someone who holds nothing the creator does not (never an ADMIN
      // by a non-ADMIN).
      assertWithin(await reachOf(s, await requirePrincipal(c, s)), await heldAnywhere(s, b.identityId), 'identityId: the identity holds permissions you do not');
    }
    const { key, record } = await s.apiKeys.create(me, b);
    noStore(c);
    return c.json({ key, ...presentApiKey(record) }, 201);
  });

  app.get('/', async (c) => {
    const me = (await requirePrincipal(c, s)).identityId;
    const other = c.req.query('identityId');
    if (other !== undefined && (!UUID.test(other) || (other !== me && !(await manager(me))))) throw new AppError('PERMISSION_DENIED');
    return c.json((await s.apiKeys.store.listFor(other ?? me)).map(presentApiKey));
  });

  app.get('/:id', async (c) => {
    const { key } = await visibleKey(c);
    return c.json({ ...presentApiKey(key), usage: await s.apiKeys.usageOf(key.id) });
  });

  app.post('/:id/rotate', async (c) => {
    const b = await readJson(c, RotateSchema);
    const { me, key } = await visibleKey(c);
    const r = await s.apiKeys.rotate(me, key, b.overlapSeconds ?? 3600);
    if (!r) throw new AppError('CONFLICT', { detail: 'The key was already rotated or revoked, or has expired.' });
    noStore(c);
    return c.json({ key: r.key, ...presentApiKey(r.record) }, 201);
  });

  app.delete('/:id', async (c) => {
    const { me, key } = await visibleKey(c);
    if (!(await s.apiKeys.revoke(me, key.id, me === key.identityId ? 'OWNER' : me === key.createdBy ? 'CREATOR' : 'ADMIN'))) throw new AppError('CONFLICT', { detail: 'The key is already revoked.' });
    return c.body(null, 204);
  });

  return app;
}
