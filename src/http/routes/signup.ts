import { Hono } from 'hono';
import { z } from 'zod';
import { AppError } from '../../errors.ts';
import { readJson } from '../body.ts';
import { deviceId } from '../middleware/client.ts';
import { presentFlow } from '../present.ts';
import { assertSignupEnabled } from '../../authn/signup/signup-service.ts';
import type { FlowRow } from '../../flows/runtime.ts';
import type { FlowErrorCode } from '../../../machines/types.ts';
import type { SignupContext } from '../../../machines/signup.machine.ts';
import { routeDocs } from '../openapi/doc.ts';
import type { Env, Services } from '../services.ts';

const StartSchema = z.object({}).strict();
export const SignupEventSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('signup'),
      email: z.string().trim().email().max(254),
      password: z.string().max(1024),
      displayName: z.string().trim().min(1).max(200).optional(),
    })
    .strict(),
  z.object({ type: z.literal('code'), code: z.string().max(64) }).strict(),
  z.object({ type: z.literal('resend') }).strict(),
]);

const FLOW_ERRORS = ['SIGNUP_DISABLED', 'FLOW_NOT_FOUND', 'FLOW_EXPIRED', 'FLOW_CONFLICT', 'INVALID_EVENT'] as const;

export const signupDocs = routeDocs('/auth/signup', 'Sign-up', {
  'POST /': {
    summary: 'Start a sign-up flow (when SIGNUP_ENABLED=on)',
    description: 'Sets the device cookie when absent; the flow is bound to this browser (or X-Device-Id).',
    auth: 'none',
    body: StartSchema,
    headers: { 'X-Device-Id': 'API clients: a stable device id instead of the device cookie' },
    responses: { 201: { description: 'The new flow (step `signup`)', schema: 'Flow' } },
    errors: ['SIGNUP_DISABLED', 'RATE_LIMITED', 'RATE_LIMIT_UNAVAILABLE', 'UNSUPPORTED_MEDIA_TYPE'],
  },
  'GET /:id': {
    summary: 'Read a sign-up flow',
    auth: 'none',
    responses: { 200: { description: 'The flow', schema: 'Flow' } },
    errors: ['SIGNUP_DISABLED', 'FLOW_NOT_FOUND', 'FLOW_EXPIRED'],
  },
  'POST /:id': {
    summary: 'Submit one event to a sign-up flow',
    description:
      '`signup` `{ email, password, displayName? }` → step `code`: a confirmation code was sent to the address. The answer is the same ' +
      'whether or not the address already has an account (its owner is told instead, and no code will match). `code` `{ code }` → ' +
      'step `done`: the address is verified. `resend` sends another code (cooldown).',
    auth: 'none',
    body: SignupEventSchema,
    responses: { 200: { description: 'The flow after the event', schema: 'Flow' } },
    errors: [
      ...FLOW_ERRORS,
      'PASSWORD_REJECTED',
      'EMAIL_DOMAIN_NOT_ALLOWED',
      'EMAIL_DISPOSABLE',
      'SIGNUP_DENIED',
      'MFA_CODE_INVALID',
      'MFA_CODE_EXPIRED',
      'MFA_CODE_LOCKED',
      'CODE_RESEND_TOO_SOON',
      'DELIVERY_FAILED',
      'SERVICE_UNAVAILABLE',
      'RATE_LIMITED',
      'RATE_LIMIT_UNAVAILABLE',
      'UNSUPPORTED_MEDIA_TYPE',
    ],
  },
});

/** The problem a sign-up step answers with, from the machine's `error` (and the password's reasons). */
function stepError(row: FlowRow): AppError | null {
  const ctx = row.snapshot.context as unknown as SignupContext;
  const code = ctx.error as FlowErrorCode | 'MFA_CODE_LOCKED' | 'SIGNUP_DENIED' | null;
  if (!code) return null;
  const extra: Record<string, unknown> = { flowRow: row };
  if (code === 'PASSWORD_REJECTED' && ctx.rejection) Object.assign(extra, ctx.rejection);
  const headers = code === 'CODE_RESEND_TOO_SOON' && ctx.retryAfter ? { 'Retry-After': String(ctx.retryAfter) } : undefined;
  const detail = ctx.messages[0]?.text;
  return new AppError(code, { extra, headers, ...(detail && code === 'PASSWORD_REJECTED' ? { detail } : {}) });
}

export function signupRoutes(s: Services) {
  const app = new Hono<Env>();
  const secure = s.config.secureCookies;
  app.use('*', async (_c, next) => {
    assertSignupEnabled(s.signup);
    await next();
  });

  const present = (c: { header: (k: string, v: string) => void }, row: FlowRow) => {
    c.header('Cache-Control', 'no-store');
    return presentFlow(row);
  };

  app.post('/', async (c) => {
    await readJson(c, StartSchema);
    const row = await s.signup.start({ deviceId: deviceId(c, secure, true), ip: c.get('clientIp'), userAgent: c.req.header('user-agent') ?? null });
    return c.json(present(c, row), 201);
  });

  app.get('/:id', async (c) => {
    const row = await s.signup.open(c.req.param('id'), { deviceId: deviceId(c, secure, false) });
    return c.json(present(c, row));
  });

  app.post('/:id', async (c) => {
    const event = await readJson(c, SignupEventSchema);
    const row = await s.signup.submit(c.req.param('id'), event, { deviceId: deviceId(c, secure, false) });
    const err = stepError(row);
    if (err) throw err;
    return c.json(present(c, row));
  });

  return app;
}
