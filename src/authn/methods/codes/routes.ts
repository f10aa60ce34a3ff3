import { Hono } from 'hono';
import { z } from 'zod';
import { randomUUID } from 'node:crypto';
import { readJson } from '../../../http/body.ts';
import { requirePrincipal } from '../../../http/middleware/auth.ts';
import { AppError } from '../../../errors.ts';
import { isUniqueViolation } from '../../../db/db.ts';
import type { RouteDoc } from '../../../http/openapi/doc.ts';
import type { Env, Services } from '../../../http/services.ts';
import type { MethodRoutes } from '../registry.ts';
import { CODE_ERRORS, CodeSchema, factorChanged, freshIfFactors, FRESH, obj, UUID } from '../enrolment.ts';

const PhoneStartSchema = z.object({ phone: z.string().regex(/^\+[1-9]\d{6,14}$/, 'an E.164 number such as +14155550100') }).strict();
const EmailStartSchema = z.object({ email: z.string().trim().email().max(254).optional() }).strict();

const contactDocs = (path: 'phone' | 'email', what: string, schema: z.ZodType): Record<string, RouteDoc> => ({
  [`POST /${path}`]: {
    summary: `Bind ${what} as a factor: sends a code there`,
    auth: 'session',
    body: schema,
    responses: { 201: obj('`{ id, type, to }` (masked destination)') },
    errors: [...FRESH, 'DELIVERY_FAILED', 'CODE_RESEND_TOO_SOON', 'UNSUPPORTED_MEDIA_TYPE'],
  },
  [`POST /${path}/:id/resend`]: { summary: 'Send the binding code again', auth: 'session', responses: { 200: obj('`{ id, type, to }`') }, errors: [...FRESH, 'MFA_FACTOR_NOT_FOUND', 'MFA_ALREADY_CONFIRMED', 'CODE_RESEND_TOO_SOON', 'DELIVERY_FAILED'] },
  [`POST /${path}/:id/confirm`]: { summary: `Confirm ${what} with the code`, auth: 'session', body: CodeSchema, responses: { 200: obj('The factor (and recoveryCodes once, for a first factor)') }, errors: [...FRESH, ...CODE_ERRORS] },
});

/**
 * Bind a phone number (SMS) or an email address as a factor under /auth/mfa: a code sent there
 * confirms it. A different number is a new factor; adding one beside existing factors needs fresh MFA.
 */
export const codesRoutes: MethodRoutes = {
  docs: {
    ...contactDocs('phone', 'a phone number (SMS)', PhoneStartSchema),
    ...contactDocs('email', 'an email address', EmailStartSchema),
  },
  app(s: Services) {
    const app = new Hono<Env>();

    for (const [path, channel] of [['phone', 'sms'], ['email', 'email']] as const) {
      const Start = channel === 'sms' ? PhoneStartSchema : EmailStartSchema;
      app.post(`/${path}`, async (c) => {
        const b = (await readJson(c, Start)) as { phone?: string; email?: string };
        const p = await requirePrincipal(c, s);
        await freshIfFactors(c, s, p.identityId);
        const user = await s.users.get(p.identityId);
        if (!user) throw new AppError('UNAUTHENTICATED');
        const destination = channel === 'sms' ? b.phone! : (b.email ?? user.email).toLowerCase();
        const id = randomUUID();
        await s.db.query(
          'INSERT INTO contact_factors (id, identity_id, channel, destination, label, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
          [id, p.identityId, channel, destination, channel === 'sms' ? 'Phone' : 'Email', new Date(s.clock.now())],
        );
        const sent = await s.sendCode({ flowKey: `bind.${id}`, identityId: p.identityId, channel, destination, resend: false });
        await s.audit.append({ type: 'mfa.enrolment_started', actor: p.identityId, subject: id, reason: channel.toUpperCase() });
        return c.json({ id, type: channel, to: sent.to }, 201);
      });

      app.post(`/${path}/:id/resend`, async (c) => {
        const p = await requirePrincipal(c, s);
        await freshIfFactors(c, s, p.identityId);
        const f = await pendingContact(p.identityId, c.req.param('id'), channel);
        const sent = await s.sendCode({ flowKey: `bind.${f.id}`, identityId: p.identityId, channel, resend: true, destination: f.destination });
        return c.json({ id: f.id, type: channel, to: sent.to });
      });

      app.post(`/${path}/:id/confirm`, async (c) => {
        const p = await requirePrincipal(c, s);
        const b = await readJson(c, CodeSchema);
        await freshIfFactors(c, s, p.identityId);
        const f = await pendingContact(p.identityId, c.req.param('id'), channel);
        const verdict = await s.codes.verify(`bind.${f.id}`, b.code);
        if (verdict === 'expired') throw new AppError('MFA_CODE_EXPIRED');
        if (verdict === 'locked') throw new AppError('MFA_CODE_LOCKED');
        if (verdict !== 'ok') throw new AppError('MFA_CODE_INVALID');
        const firstFactor = (await s.factors.methodsOf(p.identityId)).length === 0;
        const r = await s.db
          .query('UPDATE contact_factors SET confirmed_at = $3 WHERE id = $1 AND identity_id = $2 AND confirmed_at IS NULL', [f.id, p.identityId, new Date(s.clock.now())])
          .catch((e: unknown) => {
            if (isUniqueViolation(e)) throw new AppError('CONFLICT', { detail: 'This destination is already bound.' });
            throw e;
          });
        if (r.rowCount !== 1) throw new AppError('MFA_ALREADY_CONFIRMED');
        await factorChanged(s, p.identityId, channel, f.id, 'enrolled');
        const body: Record<string, unknown> = { id: f.id, type: channel, label: channel === 'sms' ? 'Phone' : 'Email', ...(channel === 'sms' ? { restricted: true } : {}) };
        if (firstFactor && channel === 'sms' && (await s.recovery.remaining(p.identityId)) === 0) body.recoveryCodes = await s.recovery.generate(p.identityId);
        c.header('Cache-Control', 'no-store');
        return c.json(body);
      });
    }

    async function pendingContact(identityId: string, id: string, channel: 'sms' | 'email') {
      if (!UUID.test(id)) throw new AppError('MFA_FACTOR_NOT_FOUND');
      const { rows } = await s.db.query<{ id: string; destination: string; confirmed_at: Date | null }>(
        'SELECT id, destination, confirmed_at FROM contact_factors WHERE id = $1 AND identity_id = $2 AND channel = $3',
        [id, identityId, channel],
      );
      if (!rows[0]) throw new AppError('MFA_FACTOR_NOT_FOUND');
      if (rows[0].confirmed_at) throw new AppError('MFA_ALREADY_CONFIRMED');
      return rows[0];
    }

    return app;
  },
};
