import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { readJson } from '../body.ts';
import { getCookie, setCookie, deleteCookie } from 'hono/cookie';
import { deviceId } from '../middleware/client.ts';
import { REMEMBER_COOKIE_PATH, rememberCookieName } from '../../session/remembered-devices.ts';
import { presentCompletion, presentFlow } from '../present.ts';
import type { Completion } from '../../flows/login-service.ts';
import type { FlowRow } from '../../flows/runtime.ts';
import { routeDocs } from '../openapi/doc.ts';
import { LOGIN_EVENT_SCHEMAS, LOGIN_START_METHODS, MFA_EVENT_SCHEMAS } from '../../authn/methods/registry.ts';
import type { Env, Services } from '../services.ts';
import { enabledProvider, outcomeError } from '../flow-outcome.ts';

export { outcomeError };

/** Second-factor events, shared by login and step-up flows (each method declares its own: src/authn/methods/). */
export const MfaEventSchemas = MFA_EVENT_SCHEMAS;
/** A flow event as a method's schema parsed it: `type` selects the machine event. */
type FlowEventBody = { type: string } & Record<string, unknown>;
const eventUnion = (schemas: readonly z.ZodObject[]) => z.discriminatedUnion('type', schemas as [z.ZodObject, ...z.ZodObject[]]) as unknown as z.ZodType<FlowEventBody>;
/** `remember: true` on a factor event that passes a login's step-up remembers the device (REMEMBER_DEVICE_DAYS). */
const remember = { remember: z.boolean().optional().describe('After a passed step-up: remember this device') };
/** The second-factor events that prove a factor (not `choose`, not a bare `resend`). */
const FACTOR_EVENTS = new Set(MFA_EVENT_SCHEMAS.filter((s) => (s.shape.type as z.ZodLiteral<string>).value !== 'choose' && Object.keys(s.shape).length > 1));
export const LoginEventSchema = eventUnion(LOGIN_EVENT_SCHEMAS.map((s) => (FACTOR_EVENTS.has(s) ? s.extend(remember) : s)));
export const StepUpEventSchema = eventUnion(MFA_EVENT_SCHEMAS);

const StartSchema = z
  .object({
    identifier: z.string().min(1).max(320).optional(),
    returnTokens: z.boolean().optional(),
    method: z.enum(LOGIN_START_METHODS).optional(),
    /** With `method: idp`: the identity provider's slug (GET /auth/providers). */
    provider: z.string().min(1).max(63).optional(),
  })
  .strict()
  .refine((b) => (b.method === 'idp') === (b.provider !== undefined), { message: 'provider is required with method idp, and only then', path: ['provider'] });

const FLOW_ERRORS = ['FLOW_NOT_FOUND', 'FLOW_EXPIRED', 'FLOW_CONFLICT', 'INVALID_EVENT'] as const;

export const loginDocs = routeDocs('/auth/login', 'Login', {
  'POST /': {
    summary: 'Start a login flow',
    description:
      'Sets the device cookie when absent. `method: passkey` starts a usernameless passkey login; `method: idp` with `provider` a login at that identity provider (`step: redirect`, send the browser to `redirect.url`). A remembered-device cookie is consumed and rotated here (a replayed one forgets its device). ' +
      'Home-realm discovery: with only an `identifier` whose email domain belongs to an organisation that signs in at an IdP, the flow goes to that IdP; any other identifier gets the password step (the answer never depends on whether an account exists).',
    auth: 'none',
    body: StartSchema,
    headers: { 'X-Device-Id': 'API clients: a stable device id (16-128 of A-Z a-z 0-9 _ -) instead of the device cookie' },
    responses: { 201: { description: 'The new flow', schema: 'Flow' } },
    errors: ['RATE_LIMITED', 'RATE_LIMIT_UNAVAILABLE', 'UNSUPPORTED_MEDIA_TYPE', 'IDP_NOT_FOUND', 'IDP_UNAVAILABLE'],
  },
  'GET /:id': {
    summary: 'Read a login flow',
    auth: 'none',
    responses: { 200: { description: 'The flow', schema: 'Flow' } },
    errors: ['FLOW_NOT_FOUND', 'FLOW_EXPIRED'],
  },
  'POST /:id': {
    summary: 'Submit one event to a login flow',
    description: 'On `done` the answer carries `session` (and `tokens` when asked for) and sets the session cookie. A failed step answers a problem that carries the `flow`.',
    auth: 'none',
    body: LoginEventSchema,
    responses: { 200: { description: 'The flow after the event', schema: 'Flow' } },
    errors: [...FLOW_ERRORS, 'INVALID_CREDENTIALS', 'ACCOUNT_LOCKED', 'LOGIN_DENIED', 'MFA_CODE_INVALID', 'MFA_CODE_EXPIRED', 'MFA_CODE_LOCKED', 'WEBAUTHN_FAILED', 'CODE_RESEND_TOO_SOON', 'DELIVERY_FAILED', 'RATE_LIMITED', 'RATE_LIMIT_UNAVAILABLE', 'UNSUPPORTED_MEDIA_TYPE'],
  },
});

export function loginRoutes(s: Services) {
  const app = new Hono<Env>();
  const secure = s.config.secureCookies;

  const finish = (c: Context<Env>, row: FlowRow, done?: Completion) =>
    presentCompletion(c, row, done, { secure, setCookie: true });

  const rememberCookie = rememberCookieName(secure);
  /** The remember cookie: HttpOnly, this site only, sent to the login routes alone. */
  const setRemember = (c: Context<Env>, r: { token: string; expiresAt: number }) =>
    setCookie(c, rememberCookie, r.token, { httpOnly: true, secure, sameSite: 'Strict', path: REMEMBER_COOKIE_PATH, maxAge: Math.max(1, Math.floor((r.expiresAt - s.clock.now()) / 1000)) });

  app.post('/', async (c) => {
    const b = await readJson(c, StartSchema);
    // Home-realm discovery, only when the client did not choose a method: by the identifier's
    // domain alone (no account is read, so the answer's shape cannot reveal one).
    const discovered = !b.method && b.identifier ? await s.federation.organisations.providerFor(b.identifier) : null;
    const provider = b.provider ?? discovered;
    if (provider !== null) await enabledProvider(s, provider);
    const dev = deviceId(c, secure, true);
    // A remembered device is presented (and its token rotated) when the login starts.
    const rem = await s.login.presentRemembered(getCookie(c, rememberCookie), dev);
    if (rem.ok) setRemember(c, rem);
    else if (rem.reason !== 'NONE') deleteCookie(c, rememberCookie, { path: REMEMBER_COOKIE_PATH, secure });
    const row = await s.login.start({
      rememberedDevice: rem.ok ? rem.rememberedId : null,
      deviceId: dev,
      ip: c.get('clientIp'),
      userAgent: c.req.header('user-agent') ?? null,
      identifier: b.identifier ?? null,
      returnTokens: b.returnTokens ?? false,
      method: provider !== null ? 'idp' : b.method,
      provider,
    });
    // The IdP could not be asked (down, misconfigured): the flow ended, and says why.
    const err = outcomeError(row);
    if (err) throw err;
    return c.json(finish(c, row), 201);
  });

  app.get('/:id', async (c) => {
    const row = await s.login.open(c.req.param('id'), { deviceId: deviceId(c, secure, false) });
    return c.json(finish(c, row));
  });

  app.post('/:id', async (c) => {
    const event = await readJson(c, LoginEventSchema);
    const { flow, completion, passwordCheck } = await s.login.submit(c.req.param('id'), event, { deviceId: deviceId(c, secure, false) });
    // The login limiter counts from this, not from the answer (rate-limit.ts loginAttemptGuard).
    if (passwordCheck) c.set('loginOutcome', passwordCheck);
    const err = outcomeError(flow);
    if (err) throw err;
    if (completion?.remember) setRemember(c, completion.remember);
    return c.json(finish(c, flow, completion));
  });

  return app;
}
