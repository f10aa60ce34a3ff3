import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { AppError, ERRORS, type ErrorCode } from '../../errors.ts';
import { readJson } from '../body.ts';
import { deviceId } from '../middleware/client.ts';
import { presentCompletion, presentFlow } from '../present.ts';
import type { Completion } from '../../flows/login-service.ts';
import type { FlowRow } from '../../flows/runtime.ts';
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
      userAgent: c.req.header('user-agent') ?? null,
      identifier: b.identifier ?? null,
      returnTokens: b.returnTokens ?? false,
      method: b.method,
    });
    return c.json(finish(c, row), 201);
  });

  app.get('/:id', async (c) => {
    const row = await s.login.runtime.load(c.req.param('id'));
    return c.json(finish(c, row));
  });

  app.post('/:id', async (c) => {
    const event = await readJson(c, LoginEventSchema);
    const { flow, completion } = await s.login.submit(c.req.param('id'), event);
    const err = outcomeError(flow);
    if (err) throw err;
    return c.json(finish(c, flow, completion));
  });

  return app;
}
