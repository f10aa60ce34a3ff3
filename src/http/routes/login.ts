import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { AppError, ERRORS } from '../../errors.ts';
import { readJson } from '../body.ts';
import { getCookie, setCookie, deleteCookie } from 'hono/cookie';
import { deviceId } from '../middleware/client.ts';
import { rememberCookieName } from '../../session/remembered-devices.ts';
import { presentCompletion, presentFlow } from '../present.ts';
import type { Completion } from '../../flows/login-service.ts';
import { delegateSnapshot, type FlowRow } from '../../flows/runtime.ts';
import type { FlowErrorCode, LoginDenialReason } from '../../../machines/types.ts';
import { routeDocs } from '../openapi/doc.ts';
import { LOGIN_EVENT_SCHEMAS, LOGIN_START_METHODS, MFA_EVENT_SCHEMAS } from '../../authn/methods/registry.ts';
import type { Env, Services } from '../services.ts';

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
  })
  .strict();

const FLOW_ERRORS = ['FLOW_NOT_FOUND', 'FLOW_EXPIRED', 'FLOW_CONFLICT', 'INVALID_EVENT'] as const;

export const loginDocs = routeDocs('/auth/login', 'Login', {
  'POST /': {
    summary: 'Start a login flow',
    description: 'Sets the device cookie when absent. `method: passkey` starts a usernameless passkey login. A remembered-device cookie is consumed and rotated here (a replayed one forgets its device).',
    auth: 'none',
    body: StartSchema,
    headers: { 'X-Device-Id': 'API clients: a stable device id (16-128 of A-Z a-z 0-9 _ -) instead of the device cookie' },
    responses: { 201: { description: 'The new flow', schema: 'Flow' } },
    errors: ['RATE_LIMITED', 'RATE_LIMIT_UNAVAILABLE', 'UNSUPPORTED_MEDIA_TYPE'],
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

/**
 * What a refused login tells the user, by reason. Only reached after the user proved the
 * password (or a passkey), so it reveals nothing about whether an account exists; it names no
 * risk signal either.
 */
const DENIAL_DETAIL: Record<LoginDenialReason, string> = {
  MFA_REQUIRED_NO_FACTOR:
    'This sign-in looks unusual and your account has no second factor to confirm it. Try again from a device you have used before, or ask an administrator to help you sign in and then add a second factor (an authenticator app or a security key).',
  RISK_DENIED: 'This sign-in was refused for security reasons. Try again from a device or network you have used before, or contact an administrator.',
  SERVICE_UNAVAILABLE: 'Sign-in could not be completed right now; try again shortly.',
  SESSION_LIMIT_REACHED: ERRORS.SESSION_LIMIT_REACHED.title,
};

const RISK_UNAVAILABLE_NO_FACTOR_DETAIL =
  'This sign-in could not be checked right now, and your account has no second factor to confirm it instead. Try again in a few minutes, or ask an administrator to help you sign in and then add a second factor.';

const LOCKED_DETAIL = 'Too many failed attempts. Wait a while before trying again, or ask an administrator to unlock the account.';

/**
 * A flow whose last step failed answers with the matching problem (and the flow): a refused or
 * locked outcome, or the `error` the machine (or its delegate) set for the event it did not accept.
 */
export function outcomeError(row: FlowRow): AppError | null {
  const snap = row.snapshot;
  const output = snap.output as { outcome?: string; reason?: string | null } | undefined;
  if (snap.status === 'done' && output?.outcome === 'denied') {
    const reason = (output.reason ?? 'RISK_DENIED') as LoginDenialReason;
    // When the risk check itself could not run, say so rather than "looks unusual".
    const unchecked = reason === 'MFA_REQUIRED_NO_FACTOR' && ((snap.context as { risk?: { reasons?: string[] } | null }).risk?.reasons ?? []).includes('RISK_UNAVAILABLE');
    const detail = unchecked ? RISK_UNAVAILABLE_NO_FACTOR_DETAIL : DENIAL_DETAIL[reason];
    return new AppError('LOGIN_DENIED', { detail, extra: { reason, flowRow: row } });
  }
  const step = presentFlow(row).step;
  // Said the same way for every identifier, known or not, and never "until when": telling a
  // locked account's end (or telling it only after a right password) would make the lock an
  // oracle — guesses are not counted while locked, so "locked" vs "wrong" would confirm a password.
  if (step === 'locked') return new AppError('ACCOUNT_LOCKED', { detail: LOCKED_DETAIL, extra: { flowRow: row } });
  const own = (snap.context as { error?: FlowErrorCode | null }).error;
  const child = delegateSnapshot(snap)?.snapshot.context as { error?: FlowErrorCode | null } | undefined;
  const code = own ?? child?.error ?? null;
  return code ? new AppError(code, { extra: { flowRow: row } }) : null;
}

export function loginRoutes(s: Services) {
  const app = new Hono<Env>();
  const secure = s.config.secureCookies;

  const finish = (c: Context<Env>, row: FlowRow, done?: Completion) =>
    presentCompletion(c, row, done, { secure, setCookie: true });

  const rememberCookie = rememberCookieName(secure);
  /** The remember cookie: HttpOnly, this site only, sent to the login routes alone. */
  const setRemember = (c: Context<Env>, r: { token: string; expiresAt: number }) =>
    setCookie(c, rememberCookie, r.token, { httpOnly: true, secure, sameSite: 'Strict', path: '/auth/login', maxAge: Math.max(1, Math.floor((r.expiresAt - s.clock.now()) / 1000)) });

  app.post('/', async (c) => {
    const b = await readJson(c, StartSchema);
    const dev = deviceId(c, secure, true);
    // A remembered device is presented (and its token rotated) when the login starts.
    const rem = await s.login.presentRemembered(getCookie(c, rememberCookie), dev);
    if (rem.ok) setRemember(c, rem);
    else if (rem.reason !== 'NONE') deleteCookie(c, rememberCookie, { path: '/auth/login', secure });
    const row = await s.login.start({
      rememberedDevice: rem.ok ? rem.rememberedId : null,
      deviceId: dev,
      ip: c.get('clientIp'),
      userAgent: c.req.header('user-agent') ?? null,
      identifier: b.identifier ?? null,
      returnTokens: b.returnTokens ?? false,
      method: b.method,
    });
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
