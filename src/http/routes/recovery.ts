import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { readJson } from '../body.ts';
import { deviceId } from '../middleware/client.ts';
import { requirePermission } from '../middleware/auth.ts';
import { presentFlow } from '../present.ts';
import { MfaEventSchemas } from './login.ts';
import { AppError, ERRORS, type ErrorCode } from '../../errors.ts';
import { delegateSnapshot, type FlowRow } from '../../flows/runtime.ts';
import type { RecoveryClient } from '../../flows/recovery-service.ts';
import { routeDocs } from '../openapi/doc.ts';
import type { Env, Services } from '../services.ts';

const RequestSchema = z.object({ identifier: z.string().trim().min(1).max(320) }).strict();
export const RecoveryEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('link'), code: z.string().max(128).describe('The code from the recovery email (the `#code=` of its link)') }).strict(),
  z.object({ type: z.literal('password'), password: z.string().max(1024).describe('The new password') }).strict(),
  ...(MfaEventSchemas as [z.ZodObject, ...z.ZodObject[]]),
]) as unknown as z.ZodType<{ type: string } & Record<string, unknown>>;

const FLOW_ERRORS = ['FLOW_NOT_FOUND', 'FLOW_EXPIRED', 'FLOW_CONFLICT', 'INVALID_EVENT'] as const;

export const recoveryDocs = routeDocs('/auth/recovery', 'Account recovery', {
  'POST /': {
    summary: 'Ask for account recovery',
    description: 'Mails a single-use link to the account\'s verified address. The answer is the same whether the identifier names an account or not (a flow at step `recovery_link`).',
    auth: 'none',
    body: RequestSchema,
    responses: { 202: { description: 'The recovery flow', schema: 'Flow' } },
    errors: ['RATE_LIMITED', 'RATE_LIMIT_UNAVAILABLE', 'UNSUPPORTED_MEDIA_TYPE'],
  },
  'GET /:id': {
    summary: 'Read a recovery flow',
    description: 'Open to any browser until the link is proven, then only to the one that proved it.',
    auth: 'none',
    responses: { 200: { description: 'The flow', schema: 'Flow' } },
    errors: ['FLOW_NOT_FOUND', 'FLOW_EXPIRED'],
  },
  'POST /:id': {
    summary: 'Submit one event to a recovery flow',
    description: '`{ type: "link", code }` proves the link (and binds the flow to this browser); then the account\'s second factor when it has one (the MFA events of login); then `{ type: "password", password }`. On `done` every session and refresh-token family of the account has ended.',
    auth: 'none',
    body: RecoveryEventSchema,
    responses: { 200: { description: 'The flow after the event', schema: 'Flow' } },
    errors: [...FLOW_ERRORS, 'RECOVERY_LINK_INVALID', 'RECOVERY_DENIED', 'PASSWORD_REJECTED', 'VALIDATION_FAILED', 'MFA_CODE_INVALID', 'MFA_CODE_EXPIRED', 'MFA_CODE_LOCKED', 'WEBAUTHN_FAILED', 'CODE_RESEND_TOO_SOON', 'DELIVERY_FAILED', 'SERVICE_UNAVAILABLE', 'UNSUPPORTED_MEDIA_TYPE'],
  },
});

export const adminRecoveryDocs = routeDocs('/api', 'Administration', {
  'POST /users/:id/reset-password': {
    summary: 'Send the user an account-recovery link',
    description: 'The same link as self-service recovery; the user still proves their second factor and chooses the password.',
    auth: 'session',
    responses: { 202: { description: '`{ sent: true, expiresAt }`', schema: { jsonSchema: { type: 'object' } } } },
    errors: ['UNAUTHENTICATED', 'PERMISSION_DENIED', 'STEP_UP_REQUIRED', 'NOT_FOUND', 'CONFLICT'],
  },
});

const DENIED_DETAIL: Record<string, string> = {
  RISK_DENIED: 'This recovery was refused for security reasons. Try again from a device or network you have used before, or ask an administrator.',
  MFA_REQUIRED_NO_FACTOR: 'This recovery looks unusual and your account has no second factor to confirm it. Try again from a device you have used before, or ask an administrator.',
};

/** The problem a recovery flow's last step answers with, if any. */
function recoveryError(row: FlowRow): AppError | null {
  const snap = row.snapshot;
  const out = snap.output as { outcome?: string; reason?: string | null } | undefined;
  if (snap.status === 'done' && out?.outcome === 'denied') return new AppError('RECOVERY_DENIED', { detail: DENIED_DETAIL[out.reason ?? ''] ?? DENIED_DETAIL.RISK_DENIED, extra: { flowRow: row } });
  if (snap.status === 'done' && out?.outcome === 'locked') return new AppError('MFA_CODE_LOCKED', { detail: 'Too many wrong attempts: ask for a new recovery link.', extra: { flowRow: row } });
  const ctx = snap.context as { error?: string | null; messages?: { text: string }[] };
  const child = delegateSnapshot(snap)?.snapshot.context as { error?: string | null } | undefined;
  const code = ctx.error ?? child?.error ?? null;
  if (!code) return null;
  const known = (Object.hasOwn(ERRORS, code) ? code : 'VALIDATION_FAILED') as ErrorCode;
  return new AppError(known, { detail: ctx.error ? ctx.messages?.[0]?.text : undefined, extra: { flowRow: row } });
}

export function recoveryRoutes(s: Services) {
  const app = new Hono<Env>();
  const secure = s.config.secureCookies;
  const client = (c: Context<Env>, issue: boolean): RecoveryClient => ({
    deviceId: deviceId(c, secure, issue),
    ip: c.get('clientIp'),
    userAgent: c.req.header('user-agent') ?? null,
  });

  app.post('/', async (c) => {
    const b = await readJson(c, RequestSchema);
    const row = await s.recoveryFlows.request(b.identifier, client(c, true));
    c.header('Cache-Control', 'no-store');
    return c.json(presentFlow(row), 202);
  });

  app.get('/:id', async (c) => {
    const row = await s.recoveryFlows.open(c.req.param('id'), client(c, false));
    c.header('Cache-Control', 'no-store');
    return c.json(presentFlow(row));
  });

  app.post('/:id', async (c) => {
    const event = await readJson(c, RecoveryEventSchema);
    // The link may be opened in another browser than the one that asked: give it a device.
    const flow = await s.recoveryFlows.submit(c.req.param('id'), event, client(c, event.type === 'link'));
    const err = recoveryError(flow);
    if (err) throw err;
    c.header('Cache-Control', 'no-store');
    return c.json(presentFlow(flow));
  });
  return app;
}

/** POST /api/users/:id/reset-password (MANAGE_USERS). */
export function adminRecoveryRoutes(s: Services) {
  const app = new Hono<Env>();
  app.post('/users/:id/reset-password', async (c) => {
    const admin = await requirePermission(c, s, 'MANAGE_USERS');
    const r = await s.recoveryFlows.adminReset(admin.identityId, c.req.param('id'));
    return c.json({ sent: true, expiresAt: r.expiresAt }, 202);
  });
  return app;
}
