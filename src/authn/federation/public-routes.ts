import { Hono } from 'hono';
import { z } from 'zod';
import { routeDocs } from '../../http/openapi/doc.ts';
import { deviceId } from '../../http/middleware/client.ts';
import { enabledProvider, outcomeError } from '../../http/routes/login.ts';
import type { Env, Services } from '../../http/services.ts';

const ProvidersSchema = z.array(z.object({ slug: z.string(), name: z.string(), type: z.enum(['oidc', 'saml']), loginUrl: z.string() }));

export const providerDocs = routeDocs('/auth', 'Identity providers', {
  'GET /providers': {
    summary: 'The enabled identity providers a person can sign in with',
    description: 'Public: name, slug, type and the URL a sign-in button links to; nothing secret.',
    auth: 'none',
    responses: { 200: { description: 'Providers', schema: ProvidersSchema } },
  },
  'GET /idp/:slug/login': {
    summary: 'Start a login at an identity provider from a link or button',
    description: 'Starts a login flow (`method: idp`) for this browser and redirects it to the IdP. The same as POST /auth/login `{ method: "idp", provider }` followed by sending the browser to `redirect.url`.',
    auth: 'none',
    responses: { 302: { description: 'To the identity provider', headers: { Location: 'The authorization URL' } } },
    errors: ['IDP_NOT_FOUND', 'IDP_UNAVAILABLE', 'RATE_LIMITED', 'RATE_LIMIT_UNAVAILABLE'],
  },
});

/** GET /auth/providers and the browser entry GET /auth/idp/:slug/login (any protocol). */
export function providerRoutes(s: Services) {
  const app = new Hono<Env>();
  const base = s.config.PUBLIC_URL.replace(/\/$/, '');

  app.get('/providers', async (c) => {
    const list = await s.federation.providers.enabled();
    c.header('Cache-Control', 'no-store');
    return c.json(list.map((p) => ({ slug: p.slug, name: p.display_name, type: p.type, loginUrl: `${base}/auth/idp/${p.slug}/login` })));
  });

  app.get('/idp/:slug/login', async (c) => {
    const p = await enabledProvider(s, c.req.param('slug'));
    const row = await s.login.start({
      deviceId: deviceId(c, s.config.secureCookies, true),
      ip: c.get('clientIp'),
      userAgent: c.req.header('user-agent') ?? null,
      returnTokens: false,
      method: 'idp',
      provider: p.slug,
    });
    const err = outcomeError(row);
    if (err) throw err;
    const url = (row.snapshot.context as { redirect?: { url: string } | null }).redirect?.url;
    c.header('Cache-Control', 'no-store');
    return c.redirect(url!, 302);
  });

  return app;
}
