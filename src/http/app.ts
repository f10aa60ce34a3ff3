import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { randomUUID } from 'node:crypto';
import { AppError, isAppError } from '../errors.ts';
import { clientContext, socketAddress } from './middleware/client.ts';
import { inCidrs, parseCidrs } from '../risk/cidr.ts';

const LOOPBACK = parseCidrs('loopback');
import { ipGetter, loginAttemptGuard, rateLimit } from './middleware/rate-limit.ts';
import { limitSettings } from '../security/limits.ts';
import { problem } from './present.ts';
import { loginRoutes } from './routes/login.ts';
import { signupRoutes } from './routes/signup.ts';
import { emailRoutes } from './routes/email.ts';
import { sessionRoutes } from './routes/session.ts';
import { mfaRoutes } from './routes/mfa.ts';
import { devicesRoutes } from './routes/devices.ts';
import { adminRecoveryRoutes, recoveryRoutes } from './routes/recovery.ts';
import { mountMethodRoutes } from './routes/methods.ts';
import { adminRoutes } from './routes/admin.ts';
import { bindingRoutes } from './routes/bindings.ts';
import { apiKeyRoutes } from '../credentials/api-keys/routes.ts';
import { riskRoutes } from './routes/risk.ts';
import { stepUpRoutes } from './routes/stepup.ts';
import { verifyRoutes } from './routes/verify.ts';
import { tokenRoutes } from './routes/token.ts';
import { trustedIssuerRoutes } from '../authn/trusted-issuers/routes.ts';
import { knownUserRoutes } from '../authn/trusted-issuers/known-user.ts';
import { clientCredentialsGrant } from '../credentials/machine-clients/grant.ts';
import { machineClientRoutes } from '../credentials/machine-clients/routes.ts';
import { TOKEN_EXCHANGE_GRANT, tokenExchangeGrant } from '../authn/trusted-issuers/exchange-grant.ts';
import { riskBacktestRoutes } from './routes/risk-backtests.ts';
import { deviceId } from './middleware/client.ts';
import { requestLog } from './middleware/request-log.ts';
import { createDevMailbox } from '../notify/dev-mailbox.ts';
import { refuseUnstorableUrl } from './input.ts';
import { allowedMethods } from './method-not-allowed.ts';
import { contractRoutes } from './openapi/routes.ts';
import { sessionCookieName } from './middleware/auth.ts';
import { csrfProtection } from './middleware/csrf.ts';
import { noFraming } from './middleware/frames.ts';
import { httpMetrics, metricsRoutes } from '../metrics/routes.ts';
import type { Env, Services } from './services.ts';
import { PAGE_FORMS, pageRoutes } from '../pages/routes.ts';

export function createApp(s: Services, extra: { checks?: Record<string, () => Promise<void>> } = {}) {
  const app = new Hono<Env>();

  app.use('*', noFraming()); // first: every answer, even a 413 from the body limit, forbids framing
  app.use('*', httpMetrics()); // latency of every answer, refusals by later middleware included

  app.use('*', async (c, next) => {
    c.set('requestId', randomUUID());
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    await next();
    // After the answer is final (onError included): e.g. an API key's use is counted unless refused.
    c.get('settle')?.(c.res.status);
  });
  const smallBodies = bodyLimit({ maxSize: 64 * 1024, onError: () => { throw new AppError('PAYLOAD_TOO_LARGE'); } });
  // Back-test uploads carry JSONL files; that route applies its own (configured) bound.
  app.use('*', (c, next) => (c.req.path === '/api/risk/backtests' ? next() : smallBodies(c, next)));
  app.use('*', refuseUnstorableUrl());
  app.use('*', clientContext({ trustedProxies: s.config.TRUSTED_PROXIES, secureCookies: s.config.secureCookies }));
  // Browser safety (README "Browser safety"): unsafe requests from another site or a sibling subdomain are refused.
  app.use(
    '*',
    csrfProtection({
      allowedOrigins: [...new Set([new URL(s.config.PUBLIC_URL).origin, ...s.config.webauthn.origins])],
      // Not cookie-authenticated: the refresh token is in the body; forward-auth judges the proxied app's request.
      skip: [/^\/auth\/token\/?$/, /^\/auth\/verify\/?$/],
      // The "this wasn't me" confirmation and the sign-in/account pages post plain forms from Threshold's own pages (which also check a token).
      forms: [/^\/auth\/report\/[^/]+$/, ...PAGE_FORMS],
      onRefused: (info) => s.logger.warn(info, 'cross-site request refused'),
    }),
  );

  app.onError((err, c) => {
    const e = isAppError(err) ? err : new AppError('INTERNAL', { cause: err });
    if (e.status >= 500) s.logger.error({ err, requestId: c.get('requestId'), path: c.req.path }, 'request failed');
    return problem(c, e, c.get('requestId'));
  });
  // A path that exists under other methods is 405 with Allow, across the whole app.
  const allow = allowedMethods(app);
  app.notFound((c) => {
    const methods = allow(c.req.path);
    const err = methods ? new AppError('METHOD_NOT_ALLOWED', { headers: { Allow: methods.join(', ') } }) : new AppError('NOT_FOUND');
    return problem(c, err, c.get('requestId'));
  });
  app.route('/metrics', metricsRoutes(s));
  // The HTTP contract (OpenAPI 3.1) and its reference page.
  app.route('/', contractRoutes({ devMailbox: s.config.devMailbox, sessionCookie: sessionCookieName(s.config.secureCookies), publicUrl: s.config.PUBLIC_URL }));

  // Liveness: the process serves HTTP. An orchestrator restarts on this one only, never on a
  // dependency being down (restarting the API would not bring back Postgres or a worker).
  app.get('/health/live', (c) => c.json({ status: 'ok' }));
  // Readiness (also plain /health): every dependency a login needs, 503 naming the failed check.
  let lastFailed = '';
  const ready = async (c: Context<Env>) => {
    const checks: Record<string, () => Promise<void>> = {
      db: () => s.db.ping(),
      // Embedded default: no Redis; jobs run in this process.
      ...(s.config.REDIS_URL ? { redis: () => s.jobs.ping() } : {}),
      // Without a risk worker every login waits the deadline and fails closed to step-up. Counted
      // by worker heartbeats, so a killed or frozen worker drops out within its ttl (6 s).
      queue: async () => {
        if ((await s.jobs.workers(s.config.RISK_QUEUE)) === 0) throw new Error('no risk worker');
      },
      ...extra.checks,
    };
    const results: Record<string, string> = {};
    await Promise.all(
      Object.entries(checks).map(async ([k, f]) => {
        results[k] = await Promise.race([
          f().then(() => 'ok'),
          new Promise<string>((r) => setTimeout(() => r('timeout'), 2000).unref()),
        ]).catch(() => 'down');
      }),
    );
    const failed = Object.keys(results).filter((k) => results[k] !== 'ok');
    // Log the changes, not every probe (a load balancer asks every few seconds).
    const now = failed.join(',');
    if (now !== lastFailed) {
      if (failed.length) s.logger.warn({ failed, checks: results }, 'readiness: not ready');
      else s.logger.info({ checks: results }, 'readiness: ready');
      lastFailed = now;
    }
    c.header('Cache-Control', 'no-store');
    return c.json({ status: failed.length ? 'degraded' : 'ok', checks: results }, failed.length ? 503 : 200);
  };
  app.get('/health', ready);
  app.get('/health/ready', ready);
  // Every route below (not the health probes, which would drown it) at debug level.
  app.use('*', requestLog(s.logger));

  app.get('/.well-known/jwks.json', async (c) => {
    c.header('Cache-Control', 'public, max-age=300');
    return c.json(await s.keys.jwks());
  });

  // Development only (config refuses DEV_MAILBOX in production; never mounted there anyway): the messages that would have been sent.
  if (s.config.devMailbox && s.config.NODE_ENV !== 'production') {
    const mailbox = createDevMailbox(s.db, s.clock);
    app.get('/dev/mailbox', async (c) => {
      // It holds live codes and links: only for someone on this machine, talking to it directly.
      // The resolved client must be local, and anything a proxy forwarded is refused whatever it
      // says: behind a loopback proxy the socket alone would make every remote client look local.
      const proxied = ['forwarded', 'x-forwarded-for', 'x-real-ip', 'x-forwarded-host', 'via'].some((h) => c.req.header(h) !== undefined);
      if (proxied || !inCidrs(c.get('clientIp'), LOOPBACK) || !inCidrs(socketAddress(c), LOOPBACK)) throw new AppError('NOT_FOUND');
      const to = c.req.query('to');
      c.header('Cache-Control', 'no-store');
      return c.json(await mailbox.list({ destination: to && to.length <= 254 ? to : undefined, limit: 50 }));
    });
  }

  // Brute-force defence in front of the login routes: flow creation per IP, password attempts per IP/account/pair.
  const ip = ipGetter(s.config.TRUSTED_PROXIES);
  const lim = limitSettings(s.config);
  app.post(
    '/auth/login',
    rateLimit({ redis: s.limits.redis, hashKey: s.limits.hashKey, prefix: 'rl:flow-start', points: lim.RATE_LIMIT_FLOW_STARTS_PER_MINUTE, duration: 60, key: ip, storeTimeoutMs: lim.RATE_LIMIT_STORE_TIMEOUT_MS }),
  );
  const signupStarts = rateLimit({ redis: s.limits.redis, hashKey: s.limits.hashKey, prefix: 'rl:signup-start', points: s.config.RATE_LIMIT_SIGNUPS_PER_HOUR, duration: 3600, key: ip, storeTimeoutMs: lim.RATE_LIMIT_STORE_TIMEOUT_MS });
  app.use('/auth/login/:id', loginAttemptGuard(s.limits.login, ip, { onStoreError: (err) => s.logger.warn({ err }, 'rate-limit settle failed') }));
  app.route('/auth/login', loginRoutes(s));
  // Sign-up: flows per IP per hour (each registers at most one address), scored by risk like a login.
  app.post(
    '/auth/signup',
    (c, next) => (s.signup.enabled ? signupStarts(c, next) : next()),
  );
  app.route('/auth/signup', signupRoutes(s));
  app.route('/auth/email', emailRoutes(s));
  app.route('/auth/mfa', mfaRoutes(s));
  app.route('/auth/devices', devicesRoutes(s));
  app.post(
    '/auth/recovery',
    rateLimit({ redis: s.limits.redis, hashKey: s.limits.hashKey, prefix: 'rl:recovery-start', points: lim.RATE_LIMIT_FLOW_STARTS_PER_MINUTE, duration: 60, key: ip, storeTimeoutMs: lim.RATE_LIMIT_STORE_TIMEOUT_MS }),
  );
  app.route('/auth/recovery', recoveryRoutes(s));
  // Methods with routes of their own elsewhere (a federated method's start and callback).
  mountMethodRoutes(app, s);
  app.route('/auth/stepup', stepUpRoutes(s));
  app.route(
    '/auth/token',
    tokenRoutes<Env>({
      refresh: s.refresh,
      clientIp: (c) => c.get('clientIp'),
      deviceId: (c) => deviceId(c, s.config.secureCookies, false),
      onError: (err) => s.logger.error({ err }, 'token grant failed'),
      grants: {
        [TOKEN_EXCHANGE_GRANT]: tokenExchangeGrant<Env>({
          exchange: s.trusted.exchange,
          audience: s.config.TOKEN_AUDIENCE ?? s.config.PUBLIC_URL,
          context: (c) => ({ ip: c.get('clientIp'), deviceId: deviceId(c, s.config.secureCookies, false), userAgent: c.req.header('user-agent')?.slice(0, 512) ?? null }),
        }),
        client_credentials: clientCredentialsGrant<Env>({ clients: s.machineClients, tokens: s.tokens, audit: s.audit }),
      },
    }),
  );
  // Forward-auth for reverse proxies (nginx auth_request, Traefik ForwardAuth, Envoy ext_authz).
  app.route('/auth/verify', verifyRoutes(s));
  // The okta/sid compatibility schemes (the demandKnownUser middleware and its route).
  app.route('/auth/known-user', knownUserRoutes(s));
  app.route('/auth', sessionRoutes(s));
  app.route('/api/risk/backtests', riskBacktestRoutes(s));
  app.route('/api/risk', riskRoutes(s));
  app.route('/api/trusted-issuers', trustedIssuerRoutes(s));
  app.route('/api/machine-clients', machineClientRoutes(s));
  app.route('/api', adminRecoveryRoutes(s));
  app.route('/api/api-keys', apiKeyRoutes(s));
  app.route('/api/users', bindingRoutes(s));
  app.route('/api', adminRoutes(s));
  // The sign-in and account pages: clients of the routes above, called in-process.
  app.route('/', pageRoutes(s, (req, env) => app.fetch(req, env as never)));
  return app;
}
