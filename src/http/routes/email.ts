import { Hono } from 'hono';
import { z } from 'zod';
import { readJson } from '../body.ts';
import { requirePrincipal } from '../middleware/auth.ts';
import { routeDocs } from '../openapi/doc.ts';
import type { Env, Services } from '../services.ts';

const CodeSchema = z.object({ code: z.string().max(64) }).strict();
const obj = (description: string) => ({ description, schema: { jsonSchema: { type: 'object' } } });

export const emailDocs = routeDocs('/auth/email', 'Email verification', {
  'POST /verification': {
    summary: "Send a code that proves the signed-in user's email address",
    description: 'For accounts that did not sign up themselves. The code works once, in this session only, for CODE_TTL_SECONDS.',
    auth: 'session',
    responses: { 200: obj('`{ emailVerified: false, to, expiresAt }` (a code was sent), or `{ emailVerified: true }`') },
    errors: ['UNAUTHENTICATED', 'CODE_RESEND_TOO_SOON', 'MFA_CODE_LOCKED', 'RATE_LIMITED', 'DELIVERY_FAILED'],
  },
  'POST /verification/confirm': {
    summary: 'Prove the address with the code',
    auth: 'session',
    body: CodeSchema,
    responses: { 200: { description: 'Verified', schema: z.object({ emailVerified: z.literal(true) }) } },
    errors: ['UNAUTHENTICATED', 'MFA_CODE_INVALID', 'MFA_CODE_EXPIRED', 'MFA_CODE_LOCKED', 'UNSUPPORTED_MEDIA_TYPE'],
  },
});

export function emailRoutes(s: Services) {
  const app = new Hono<Env>();
  app.post('/verification', async (c) => {
    const p = await requirePrincipal(c, s);
    c.header('Cache-Control', 'no-store');
    return c.json(await s.emailVerification.start({ identityId: p.identityId, sessionId: p.sessionId }));
  });
  app.post('/verification/confirm', async (c) => {
    const b = await readJson(c, CodeSchema);
    const p = await requirePrincipal(c, s);
    await s.emailVerification.confirm({ identityId: p.identityId, sessionId: p.sessionId, code: b.code });
    return c.json({ emailVerified: true });
  });
  return app;
}
