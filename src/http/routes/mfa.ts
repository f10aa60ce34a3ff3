import { Hono } from 'hono';
import { z } from 'zod';
import { readJson } from '../body.ts';
import { requirePrincipal } from '../middleware/auth.ts';
import { AppError } from '../../errors.ts';
import type { Env, Services } from '../services.ts';

export function mfaRoutes(s: Services) {
  const app = new Hono<Env>();

  app.get('/', async (c) => {
    const p = await requirePrincipal(c, s);
    const { rows } = await s.db.query<{ id: string; label: string; created_at: Date; last_used_at: Date | null }>(
      'SELECT id, label, created_at, last_used_at FROM totp_factors WHERE identity_id = $1 AND confirmed_at IS NOT NULL ORDER BY created_at',
      [p.identityId],
    );
    const factors = rows.map((r) => ({
      id: r.id,
      type: 'totp',
      label: r.label,
      createdAt: r.created_at.toISOString(),
      lastUsedAt: r.last_used_at?.toISOString() ?? null,
    }));
    const left = await s.recovery.remaining(p.identityId);
    if (left > 0) factors.push({ id: 'recovery_codes', type: 'recovery_code', label: `${left} recovery codes left`, createdAt: '', lastUsedAt: null });
    return c.json(factors);
  });

  app.post('/totp', async (c) => {
    const p = await requirePrincipal(c, s);
    const user = await s.users.get(p.identityId);
    if (!user) throw new AppError('UNAUTHENTICATED');
    const r = await s.totp.enrol(p.identityId, user.email);
    await s.audit.append({ type: 'mfa.enrolment_started', actor: p.identityId, subject: r.id, reason: 'TOTP' });
    c.header('Cache-Control', 'no-store');
    return c.json(r, 201);
  });

  app.post('/totp/:id/confirm', async (c) => {
    const p = await requirePrincipal(c, s);
    const b = await readJson(c, z.object({ code: z.string().max(64) }).strict());
    const id = c.req.param('id');
    if (!/^[0-9a-f-]{36}$/.test(id)) throw new AppError('MFA_FACTOR_NOT_FOUND');
    const { firstFactor } = await s.totp.confirm(p.identityId, id, b.code);
    await s.audit.append({ type: 'mfa.enrolled', actor: p.identityId, subject: id, reason: 'TOTP' });
    const body: Record<string, unknown> = { id, type: 'totp', label: 'Authenticator app' };
    if (firstFactor) {
      body.recoveryCodes = await s.recovery.generate(p.identityId);
      await s.audit.append({ type: 'recovery_codes.generated', actor: p.identityId, subject: p.identityId, reason: 'FIRST_FACTOR' });
    }
    c.header('Cache-Control', 'no-store');
    return c.json(body);
  });

  return app;
}
