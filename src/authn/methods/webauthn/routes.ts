import { Hono } from 'hono';
import { z } from 'zod';
import { readJson } from '../../../http/body.ts';
import { requireFreshMfa, requirePrincipal } from '../../../http/middleware/auth.ts';
import { AppError } from '../../../errors.ts';
import type { Env, Services } from '../../../http/services.ts';
import type { MethodRoutes } from '../registry.ts';
import { FRESH, obj } from '../enrolment.ts';

const WebAuthnOptionsSchema = z.object({ passkey: z.boolean().optional() }).strict();
const WebAuthnRegisterSchema = z
  .object({ response: z.record(z.string(), z.unknown()).describe('RegistrationResponseJSON'), label: z.string().trim().min(1).max(64).optional() })
  .strict();

/** Registration of a security key or passkey under /auth/mfa; bound to this session by its challenge. */
export const webauthnRoutes: MethodRoutes = {
  docs: {
    'POST /webauthn/options': { summary: 'Registration options for a security key or passkey', auth: 'session', body: WebAuthnOptionsSchema, responses: { 200: obj('PublicKeyCredentialCreationOptionsJSON') }, errors: [...FRESH] },
    'POST /webauthn': { summary: 'Register a security key or passkey', auth: 'session', body: WebAuthnRegisterSchema, responses: { 201: obj('`{ id, type, label, deviceType, backedUp, passkey }`') }, errors: [...FRESH, 'WEBAUTHN_FAILED'] },
  },
  app(s: Services) {
    const app = new Hono<Env>();

    app.post('/webauthn/options', async (c) => {
      const b = await readJson(c, WebAuthnOptionsSchema);
      const p = await requirePrincipal(c, s);
      if ((await s.factors.methodsOf(p.identityId)).length) await requireFreshMfa(c, s);
      const user = await s.users.get(p.identityId);
      if (!user) throw new AppError('UNAUTHENTICATED');
      const options = await s.webauthn.registrationOptions({
        identityId: user.id,
        email: user.email,
        displayName: user.displayName ?? user.email,
        flowKey: `session:${p.sessionId}`,
        passkey: b.passkey ?? false,
      });
      c.header('Cache-Control', 'no-store');
      return c.json(options);
    });

    app.post('/webauthn', async (c) => {
      const b = await readJson(c, WebAuthnRegisterSchema);
      const p = await requirePrincipal(c, s);
      const firstFactor = (await s.factors.methodsOf(p.identityId)).length === 0;
      if (!firstFactor) await requireFreshMfa(c, s);
      const f = await s.webauthn.register({ identityId: p.identityId, flowKey: `session:${p.sessionId}`, response: b.response as never, label: b.label });
      await s.notifyUser?.(p.identityId, 'factor_changed', { factor: 'webauthn', action: 'enrolled' });
      const body: Record<string, unknown> = { id: f.id, type: 'webauthn', label: f.label, deviceType: f.deviceType, backedUp: f.backedUp, passkey: f.discoverable };
      if (firstFactor && (await s.recovery.remaining(p.identityId)) === 0) body.recoveryCodes = await s.recovery.generate(p.identityId);
      c.header('Cache-Control', 'no-store');
      return c.json(body, 201);
    });

    return app;
  },
};
