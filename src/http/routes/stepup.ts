import { Hono } from 'hono';
import { z } from 'zod';
import { readJson } from '../body.ts';
import { deviceId } from '../middleware/client.ts';
import { requirePrincipal } from '../middleware/auth.ts';
import { presentCompletion, presentFlow } from '../present.ts';
import { outcomeError, StepUpEventSchema } from './login.ts';
import { routeDocs } from '../openapi/doc.ts';
import type { Env, Services } from '../services.ts';

const StartSchema = z
  .object({
    acr_values: z.string().max(200).optional(),
    max_age: z.number().int().nonnegative().optional(),
    permission: z.string().min(1).max(128).optional(),
    returnTokens: z.boolean().optional(),
  })
  .strict();

export const stepUpDocs = routeDocs('/auth/stepup', 'Step-up', {
  'POST /': {
    summary: "Start a step-up (RFC 9470) of the caller's session",
    description: 'Asks for what `acr_values`/`max_age` or a permission requires; tokens are returned to bearer callers.',
    auth: 'session',
    body: StartSchema,
    responses: { 201: { description: 'A flow of type stepup', schema: 'Flow' } },
    errors: ['UNAUTHENTICATED', 'PERMISSION_DENIED', 'MFA_ENROLMENT_REQUIRED', 'UNSUPPORTED_MEDIA_TYPE'],
  },
  'GET /:id': {
    summary: 'Read one of your step-up flows',
    auth: 'session',
    responses: { 200: { description: 'The flow', schema: 'Flow' } },
    errors: ['UNAUTHENTICATED', 'FLOW_NOT_FOUND', 'FLOW_EXPIRED'],
  },
  'POST /:id': {
    summary: 'Submit one second-factor event to a step-up flow',
    description: "On `done` the session's amr and auth_time are raised and its id rotates (new cookie or tokens).",
    auth: 'session',
    body: StepUpEventSchema,
    responses: { 200: { description: 'The flow after the event', schema: 'Flow' } },
    errors: ['UNAUTHENTICATED', 'FLOW_NOT_FOUND', 'FLOW_EXPIRED', 'FLOW_CONFLICT', 'INVALID_EVENT', 'MFA_CODE_INVALID', 'MFA_CODE_EXPIRED', 'MFA_CODE_LOCKED', 'WEBAUTHN_FAILED', 'CODE_RESEND_TOO_SOON', 'DELIVERY_FAILED', 'UNSUPPORTED_MEDIA_TYPE'],
  },
});

/** RFC 9470 step-up of the caller's live session. */
export function stepUpRoutes(s: Services) {
  const app = new Hono<Env>();
  const secure = s.config.secureCookies;

  app.post('/', async (c) => {
    const b = await readJson(c, StartSchema);
    const p = await requirePrincipal(c, s);
    const row = await s.stepup.start(
      p,
      { acrValues: b.acr_values, maxAge: b.max_age, permission: b.permission },
      { deviceId: deviceId(c, secure, false), ip: c.get('clientIp'), returnTokens: b.returnTokens ?? c.get('via') === 'bearer' },
    );
    c.header('Cache-Control', 'no-store');
    return c.json(presentFlow(row), 201);
  });

  app.get('/:id', async (c) => {
    const p = await requirePrincipal(c, s);
    return c.json(presentFlow(await s.stepup.ownFlow(p, c.req.param('id'), { deviceId: deviceId(c, secure, false) })));
  });

  app.post('/:id', async (c) => {
    const p = await requirePrincipal(c, s);
    const event = await readJson(c, StepUpEventSchema);
    const { flow, completion } = await s.stepup.submit(p, c.req.param('id'), event, { deviceId: deviceId(c, secure, false) });
    const err = outcomeError(flow);
    if (err) throw err;
    // On success the session id rotates: the old cookie and tokens stop working.
    const body = presentCompletion(c, flow, completion, { secure, setCookie: c.get('via') === 'cookie' });
    return c.json(body);
  });

  return app;
}
