import { Hono } from 'hono';
import { z } from 'zod';
import { routeDocs } from '../../http/openapi/doc.ts';
import type { Env, Services } from '../../http/services.ts';

const ProvidersSchema = z.array(z.object({ slug: z.string(), name: z.string(), type: z.enum(['oidc', 'saml']), loginUrl: z.string() }));

export const providerDocs = routeDocs('/auth', 'Identity providers', {
  'GET /providers': {
    summary: 'The enabled identity providers a person can sign in with',
    description: 'Public: name, slug, type and the URL a sign-in button links to; nothing secret.',
    auth: 'none',
    responses: { 200: { description: 'Providers', schema: ProvidersSchema } },
  },
});

/** GET /auth/providers: what a sign-in page shows as buttons. */
export function providerRoutes(s: Services) {
  const app = new Hono<Env>();
  const base = s.config.PUBLIC_URL.replace(/\/$/, '');

  app.get('/providers', async (c) => {
    const list = await s.federation.providers.enabled();
    c.header('Cache-Control', 'no-store');
    return c.json(list.map((p) => ({ slug: p.slug, name: p.display_name, type: p.type, loginUrl: `${base}/auth/idp/${p.slug}/login` })));
  });

  return app;
}
