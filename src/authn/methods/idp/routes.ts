import { Hono } from 'hono';
import type { RouteDoc } from '../../../http/openapi/doc.ts';
import { deviceId } from '../../../http/middleware/client.ts';
import { enabledProvider, outcomeError } from '../../../http/flow-outcome.ts';
import type { Env, Services } from '../../../http/services.ts';
import { oidcCallbackDocs, oidcCallback } from '../oidc/routes.ts';

/** Routes under /auth/idp (keys relative to it): the sign-in link, and each protocol's callback. */
export const idpRouteDocs: Record<string, RouteDoc> = {
  'GET /:slug/login': {
    summary: 'Start a login at an identity provider from a link or button',
    description: 'Starts a login flow (`method: idp`) for this browser and redirects it to the IdP. The same as POST /auth/login `{ method: "idp", provider }` followed by sending the browser to `redirect.url`.',
    auth: 'none',
    responses: { 302: { description: 'To the identity provider', headers: { Location: 'The authorization URL' } } },
    errors: ['IDP_NOT_FOUND', 'IDP_UNAVAILABLE', 'RATE_LIMITED', 'RATE_LIMIT_UNAVAILABLE'],
  },
  ...oidcCallbackDocs,
};

export function idpRoutes(s: Services) {
  const app = new Hono<Env>();

  // The sign-in button's link (GET /auth/providers gives it): any protocol; rate-limited as flow starts (app.ts).
  app.get('/:slug/login', async (c) => {
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

  app.get('/:slug/callback', (c) => oidcCallback(c, s));

  return app;
}
