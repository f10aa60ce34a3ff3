import { createPrincipalPipeline, type PrincipalPipeline } from './pipeline.ts';
import { bearerTokenAuthenticator, sessionCookieAuthenticator } from './session-authenticators.ts';

type Deps = Parameters<typeof sessionCookieAuthenticator>[0];

/**
 * The default order: session cookie (only without a header credential), bearer access token,
 * API key (added by the composition root), then whatever registers (service-account tokens).
 */
export function defaultPipeline(d: Deps): PrincipalPipeline {
  return createPrincipalPipeline([sessionCookieAuthenticator(d), bearerTokenAuthenticator(d)]);
}

/** The same pipeline with the session authenticators built on other caches (forward-auth options, tests). */
export function withSessionDeps(base: PrincipalPipeline, d: Deps): PrincipalPipeline {
  return createPrincipalPipeline(
    base.authenticators.map((a) => (a.name === 'session_cookie' ? sessionCookieAuthenticator(d) : a.name === 'bearer_access_token' ? bearerTokenAuthenticator(d) : a)),
  );
}
