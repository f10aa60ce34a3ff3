import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { AppError, ERRORS, type ErrorCode } from '../../errors.ts';
import { readJson } from '../body.ts';
import { deviceId } from '../middleware/client.ts';
import { presentCompletion, presentFlow } from '../present.ts';
import type { Completion } from '../../flows/login-service.ts';
import type { FlowRow } from '../../flows/runtime.ts';
import { routeDocs } from '../openapi/doc.ts';
import type { Env, Services } from '../services.ts';

const code = z.string().max(64);
/** Second-factor events, shared by login and step-up flows. */
export const MfaEventSchemas = [
  z.object({ type: z.literal('choose'), method: z.enum(['webauthn', 'totp', 'sms', 'email', 'recovery_code']) }).strict(),
  z.object({ type: z.literal('totp'), code }).strict(),
  z.object({ type: z.literal('recovery_code'), code }).strict(),
  z.object({ type: z.literal('code'), code }).strict(),
  z.object({ type: z.literal('resend') }).strict(),
  // AuthenticationResponseJSON; verified field by field by the WebAuthn service.
  z.object({ type: z.literal('webauthn'), response: z.record(z.string(), z.unknown()) }).strict(),
] as const;
export const LoginEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('password'), identifier: z.string().min(1).max(320), password: z.string().max(1024) }).strict(),
  ...MfaEventSchemas,
]);
export const StepUpEventSchema = z.discriminatedUnion('type', [...MfaEventSchemas]);

const StartSchema = z
  .object({
    identifier: z.string().min(1).max(320).optional(),
    returnTokens: z.boolean().optional(),
    method: z.enum(['password', 'passkey']).optional(),
  })
  .strict();

const FLOW_ERRORS = ['FLOW_NOT_FOUND', 'FLOW_EXPIRED', 'FLOW_CONFLICT', 'INVALID_EVENT'] as const;

export const loginDocs = routeDocs('/auth/login', 'Login', {
  'POST /': {
    summary: 'Start a login flow',
    description: 'Sets the device cookie when absent. `method: passkey` starts a usernameless passkey login.',
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

/** A flow whose last step failed answers with the matching problem (and the flow). */
export function outcomeError(row: FlowRow): AppError | null {
  const body = presentFlow(row);
  if (body.step === 'denied') return new AppError('LOGIN_DENIED', { extra: { flowRow: row } });
  if (body.step === 'locked') return new AppError('ACCOUNT_LOCKED', { extra: { flowRow: row } });
  const m = body.messages.find((x) => x.code in ERRORS);
  return m ? new AppError(m.code as ErrorCode, { extra: { flowRow: row } }) : null;
}

export function loginRoutes(s: Services) {
  const app = new Hono<Env>();
  const secure = s.config.secureCookies;

  const finish = (c: Context<Env>, row: FlowRow, done?: Completion) =>
    presentCompletion(c, row, done, { secure, setCookie: true });

  app.post('/', async (c) => {
    const b = await readJson(c, StartSchema);
    const row = await s.login.start({
      deviceId: deviceId(c, secure, true),
      ip: c.get('clientIp'),
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
    const { flow, completion } = await s.login.submit(c.req.param('id'), event, { deviceId: deviceId(c, secure, false) });
    const err = outcomeError(flow);
    if (err) throw err;
    return c.json(finish(c, flow, completion));
  });

  return app;
}
