import { Hono } from 'hono';
import type { Env, Services } from '../http/services.ts';
import { inProcessApi } from './api.ts';
import { assetRoutes } from './assets.ts';
import { loginPages, type PageDeps } from './login.tsx';
import { accountPages } from './account.tsx';
import { csrfTokens, returnToPolicy } from './security.ts';

/** Paths of the pages' HTML form posts: origin-checked by the CSRF middleware, any content type (each also checks its token). */
export const PAGE_FORMS = [/^\/login$/, /^\/login\/[^/]+$/, /^\/stepup\/[^/]+$/, /^\/account(?:\/[^/]+){1,3}$/];

/**
 * The people's pages (`/login`, `/stepup/:id`, `/account`) and their assets. They drive the HTTP
 * API in-process through `fetchApp` (the app itself), so the flow rules live only there.
 */
export function pageRoutes(s: Services, fetchApp: (req: Request, env: unknown) => Response | Promise<Response>) {
  const extra = (s.config.RETURN_TO_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean);
  const d: PageDeps = {
    api: inProcessApi(fetchApp),
    csrf: csrfTokens(s.pageCsrfKey),
    returnTo: returnToPolicy(s.config.PUBLIC_URL, [...s.config.webauthn.origins, ...extra]),
    secure: s.config.secureCookies,
    resendCooldown: s.config.CODE_RESEND_COOLDOWN_SECONDS,
    rememberDays: s.config.REMEMBER_DEVICE_DAYS,
  };
  const app = new Hono<Env>();
  app.route('/', assetRoutes());
  app.route('/', loginPages(d));
  app.route('/', accountPages(d));
  return app;
}
