import { Hono } from 'hono';
import { requireFreshMfa } from '../../../http/middleware/auth.ts';
import type { Env, Services } from '../../../http/services.ts';
import type { MethodRoutes } from '../registry.ts';
import { factorChanged, FRESH, obj } from '../enrolment.ts';

/** Replacing the recovery codes under /auth/mfa (the first ones come with the first factor). */
export const recoveryRoutes: MethodRoutes = {
  docs: {
    'POST /recovery-codes': { summary: 'Replace the recovery codes (fresh MFA needed)', auth: 'session', responses: { 200: obj('`{ recoveryCodes }`, shown once') }, errors: [...FRESH] },
  },
  app(s: Services) {
    const app = new Hono<Env>();
    app.post('/recovery-codes', async (c) => {
      const p = await requireFreshMfa(c, s);
      const codes = await s.recovery.generate(p.identityId);
      await factorChanged(s, p.identityId, 'recovery_code', p.identityId, 'recovery_codes_regenerated');
      c.header('Cache-Control', 'no-store');
      return c.json({ recoveryCodes: codes });
    });
    return app;
  },
};
