import { Hono } from 'hono';
import { readJson } from '../../../http/body.ts';
import { requirePrincipal } from '../../../http/middleware/auth.ts';
import { AppError } from '../../../errors.ts';
import type { Env, Services } from '../../../http/services.ts';
import type { MethodRoutes } from '../registry.ts';
import { CODE_ERRORS, CodeSchema, factorChanged, freshIfFactors, FRESH, obj, UUID } from '../enrolment.ts';

/** TOTP enrolment under /auth/mfa: pending until confirmed with a code. */
export const totpRoutes: MethodRoutes = {
  docs: {
    'POST /totp': { summary: 'Start a TOTP enrolment (pending until confirmed)', auth: 'session', responses: { 201: obj('`{ id, secret, otpauthUri }`') }, errors: [...FRESH] },
    'POST /totp/:id/confirm': { summary: 'Confirm a TOTP enrolment with a code', auth: 'session', body: CodeSchema, responses: { 200: obj('The factor (and recoveryCodes once, for a first factor)') }, errors: [...FRESH, ...CODE_ERRORS] },
  },
  app(s: Services) {
    const app = new Hono<Env>();

    app.post('/totp', async (c) => {
      const p = await requirePrincipal(c, s);
      // Adding a factor next to existing ones needs fresh MFA (else a stolen password session could add its own).
      await freshIfFactors(c, s, p.identityId);
      const user = await s.users.get(p.identityId);
      if (!user) throw new AppError('UNAUTHENTICATED');
      const r = await s.totp.enrol(p.identityId, user.email);
      await s.audit.append({ type: 'mfa.enrolment_started', actor: p.identityId, subject: r.id, reason: 'TOTP' });
      c.header('Cache-Control', 'no-store');
      return c.json(r, 201);
    });

    app.post('/totp/:id/confirm', async (c) => {
      const p = await requirePrincipal(c, s);
      const b = await readJson(c, CodeSchema);
      // Confirming is adding: an enrolment started before other factors existed needs fresh MFA now.
      await freshIfFactors(c, s, p.identityId);
      const id = c.req.param('id');
      if (!UUID.test(id)) throw new AppError('MFA_FACTOR_NOT_FOUND');
      const { firstFactor } = await s.totp.confirm(p.identityId, id, b.code);
      await factorChanged(s, p.identityId, 'totp', id, 'enrolled');
      const body: Record<string, unknown> = { id, type: 'totp', label: 'Authenticator app' };
      if (firstFactor && (await s.recovery.remaining(p.identityId)) === 0) {
        body.recoveryCodes = await s.recovery.generate(p.identityId);
        await s.audit.append({ type: 'recovery_codes.generated', actor: p.identityId, subject: p.identityId, reason: 'FIRST_FACTOR' });
      }
      c.header('Cache-Control', 'no-store');
      return c.json(body);
    });

    return app;
  },
};
