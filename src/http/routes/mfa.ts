import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { readJson } from '../body.ts';
import { requireFreshMfa, requirePrincipal } from '../middleware/auth.ts';
import { randomUUID } from 'node:crypto';
import { AppError } from '../../errors.ts';
import { isUniqueViolation } from '../../db/db.ts';
import { routeDocs, type RouteDoc } from '../openapi/doc.ts';
import type { Env, Services } from '../services.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const Label = z.object({ label: z.string().trim().min(1).max(100) }).strict();
const CodeSchema = z.object({ code: z.string().max(64) }).strict();
const WebAuthnOptionsSchema = z.object({ passkey: z.boolean().optional() }).strict();
const WebAuthnRegisterSchema = z
  .object({ response: z.record(z.string(), z.unknown()).describe('RegistrationResponseJSON'), label: z.string().trim().min(1).max(64).optional() })
  .strict();
const PhoneStartSchema = z.object({ phone: z.string().regex(/^\+[1-9]\d{6,14}$/, 'an E.164 number such as +14155550100') }).strict();
const EmailStartSchema = z.object({ email: z.string().trim().email().max(254).optional() }).strict();

const obj = (description: string) => ({ description, schema: { jsonSchema: { type: 'object' } } });
const FRESH = ['UNAUTHENTICATED', 'STEP_UP_REQUIRED'] as const;
const CODE_ERRORS = ['MFA_CODE_INVALID', 'MFA_CODE_EXPIRED', 'MFA_CODE_LOCKED', 'MFA_FACTOR_NOT_FOUND', 'MFA_ALREADY_CONFIRMED', 'CONFLICT'] as const;
const contactDocs = (path: 'phone' | 'email', what: string, schema: z.ZodType) => ({
  [`POST /${path}`]: {
    summary: `Bind ${what} as a factor: sends a code there`,
    auth: 'session',
    body: schema,
    responses: { 201: obj('`{ id, type, to }` (masked destination)') },
    errors: [...FRESH, 'DELIVERY_FAILED', 'CODE_RESEND_TOO_SOON', 'UNSUPPORTED_MEDIA_TYPE'],
  },
  [`POST /${path}/:id/resend`]: { summary: 'Send the binding code again', auth: 'session', responses: { 200: obj('`{ id, type, to }`') }, errors: [...FRESH, 'MFA_FACTOR_NOT_FOUND', 'MFA_ALREADY_CONFIRMED', 'CODE_RESEND_TOO_SOON', 'DELIVERY_FAILED'] },
  [`POST /${path}/:id/confirm`]: { summary: `Confirm ${what} with the code`, auth: 'session', body: CodeSchema, responses: { 200: obj('The factor (and recoveryCodes once, for a first factor)') }, errors: [...FRESH, ...CODE_ERRORS] },
}) satisfies Record<string, RouteDoc>;

export const mfaDocs = routeDocs('/auth/mfa', 'Factors', {
  'GET /': { summary: "The caller's second factors", auth: 'session', responses: { 200: { description: '`[{ id, type, label, createdAt, lastUsedAt }]`', schema: { jsonSchema: { type: 'array', items: { type: 'object' } } } } }, errors: ['UNAUTHENTICATED'] },
  'POST /totp': { summary: 'Start a TOTP enrolment (pending until confirmed)', auth: 'session', responses: { 201: obj('`{ id, secret, otpauthUri }`') }, errors: [...FRESH] },
  'POST /totp/:id/confirm': { summary: 'Confirm a TOTP enrolment with a code', auth: 'session', body: CodeSchema, responses: { 200: obj('The factor (and recoveryCodes once, for a first factor)') }, errors: [...FRESH, ...CODE_ERRORS] },
  'POST /webauthn/options': { summary: 'Registration options for a security key or passkey', auth: 'session', body: WebAuthnOptionsSchema, responses: { 200: obj('PublicKeyCredentialCreationOptionsJSON') }, errors: [...FRESH] },
  'POST /webauthn': { summary: 'Register a security key or passkey', auth: 'session', body: WebAuthnRegisterSchema, responses: { 201: obj('`{ id, type, label, deviceType, backedUp, passkey }`') }, errors: [...FRESH, 'WEBAUTHN_FAILED'] },
  ...contactDocs('phone', 'a phone number (SMS)', PhoneStartSchema),
  ...contactDocs('email', 'an email address', EmailStartSchema),
  'PATCH /:id': { summary: 'Rename a factor', auth: 'session', body: Label, responses: { 200: obj('The factor') }, errors: ['UNAUTHENTICATED', 'MFA_FACTOR_NOT_FOUND'] },
  'DELETE /:id': {
    summary: 'Remove a factor (fresh MFA needed)',
    auth: 'session',
    query: z.object({ endOtherSessions: z.enum(['true', 'false']).optional().describe('`true` also signs every other session out') }),
    responses: { 204: { description: 'Removed' } },
    errors: [...FRESH, 'MFA_FACTOR_NOT_FOUND'],
  },
  'POST /recovery-codes': { summary: 'Replace the recovery codes (fresh MFA needed)', auth: 'session', responses: { 200: obj('`{ recoveryCodes }`, shown once') }, errors: [...FRESH] },
});

/** Second-factor management for the signed-in user; every change is audited and mailed to them. */
export function mfaRoutes(s: Services) {
  const app = new Hono<Env>();

  const changed = async (identityId: string, type: string, factorId: string, action: 'enrolled' | 'removed' | 'recovery_codes_regenerated') => {
    // New recovery codes are one happening whether first or regenerated: `recovery_codes.generated`.
    if (action === 'recovery_codes_regenerated')
      await s.audit.append({ type: 'recovery_codes.generated', actor: identityId, subject: factorId, reason: 'REGENERATED' });
    else await s.audit.append({ type: `mfa.${action}`, actor: identityId, subject: factorId, reason: type.toUpperCase() });
    // One email per change, even if this request is retried.
    await s.notifyUser?.(identityId, 'factor_changed', { factor: type, action }, `${factorId}-${action}-${Math.floor(s.clock.now() / 1000)}`);
  };

  app.get('/', async (c) => {
    const p = await requirePrincipal(c, s);
    return c.json(await s.factors.list(p.identityId));
  });

  /** Beside existing factors, every step that adds one needs fresh MFA. */
  const freshIfFactors = async (c: Context<Env>, identityId: string) => {
    if ((await s.factors.methodsOf(identityId)).length) await requireFreshMfa(c, s);
  };

  app.post('/totp', async (c) => {
    const p = await requirePrincipal(c, s);
    // Adding a factor next to existing ones needs fresh MFA (else a stolen password session could add its own).
    if ((await s.factors.methodsOf(p.identityId)).length) await requireFreshMfa(c, s);
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
    await freshIfFactors(c, p.identityId);
    const id = c.req.param('id');
    if (!UUID.test(id)) throw new AppError('MFA_FACTOR_NOT_FOUND');
    const { firstFactor } = await s.totp.confirm(p.identityId, id, b.code);
    await changed(p.identityId, 'totp', id, 'enrolled');
    const body: Record<string, unknown> = { id, type: 'totp', label: 'Authenticator app' };
    if (firstFactor && (await s.recovery.remaining(p.identityId)) === 0) {
      body.recoveryCodes = await s.recovery.generate(p.identityId);
      await s.audit.append({ type: 'recovery_codes.generated', actor: p.identityId, subject: p.identityId, reason: 'FIRST_FACTOR' });
    }
    c.header('Cache-Control', 'no-store');
    return c.json(body);
  });

  /** Registration of a security key or passkey; bound to this session by its challenge. */
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

  /**
   * Bind a phone number (SMS) or an email address as a factor: a code sent there confirms it.
   * A different number is a new factor; adding one beside existing factors needs fresh MFA.
   */
  for (const [path, channel] of [['phone', 'sms'], ['email', 'email']] as const) {
    const Start = channel === 'sms' ? PhoneStartSchema : EmailStartSchema;
    app.post(`/${path}`, async (c) => {
      const b = (await readJson(c, Start)) as { phone?: string; email?: string };
      const p = await requirePrincipal(c, s);
      if ((await s.factors.methodsOf(p.identityId)).length) await requireFreshMfa(c, s);
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
      await freshIfFactors(c, p.identityId);
      const f = await pendingContact(p.identityId, c.req.param('id'), channel);
      const sent = await s.sendCode({ flowKey: `bind.${f.id}`, identityId: p.identityId, channel, resend: true, destination: f.destination });
      return c.json({ id: f.id, type: channel, to: sent.to });
    });

    app.post(`/${path}/:id/confirm`, async (c) => {
      const p = await requirePrincipal(c, s);
      const b = await readJson(c, CodeSchema);
      await freshIfFactors(c, p.identityId);
      const f = await pendingContact(p.identityId, c.req.param('id'), channel);
      const verdict = await s.codes.verify(`bind.${f.id}`, b.code);
      if (verdict === 'expired') throw new AppError('MFA_CODE_EXPIRED');
      if (verdict === 'locked') throw new AppError('MFA_CODE_LOCKED');
      if (verdict !== 'ok') throw new AppError('MFA_CODE_INVALID');
      const firstFactor = (await s.factors.methodsOf(p.identityId)).length === 0;
      const r = await s.db.query('UPDATE contact_factors SET confirmed_at = $3 WHERE id = $1 AND identity_id = $2 AND confirmed_at IS NULL', [
        f.id,
        p.identityId,
        new Date(s.clock.now()),
      ]).catch((e: unknown) => {
        if (isUniqueViolation(e)) throw new AppError('CONFLICT', { detail: 'This destination is already bound.' });
        throw e;
      });
      if (r.rowCount !== 1) throw new AppError('MFA_ALREADY_CONFIRMED');
      await changed(p.identityId, channel, f.id, 'enrolled');
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

  app.patch('/:id', async (c) => {
    const p = await requirePrincipal(c, s);
    const b = await readJson(c, Label);
    const f = await s.factors.rename(p.identityId, c.req.param('id'), b.label);
    await s.audit.append({ type: 'mfa.renamed', actor: p.identityId, subject: f.id, reason: f.type.toUpperCase() });
    return c.json(f);
  });

  /** `?endOtherSessions=true` also signs every other session out (e.g. a lost phone). */
  app.delete('/:id', async (c) => {
    const p = await requireFreshMfa(c, s);
    const f = await s.factors.remove(p.identityId, c.req.param('id'));
    await changed(p.identityId, f.type, f.id, 'removed');
    if (c.req.query('endOtherSessions') === 'true') await s.sessions.revokeAllFor(p.identityId, 'factor_removed', p.sessionId);
    return c.body(null, 204);
  });

  app.post('/recovery-codes', async (c) => {
    const p = await requireFreshMfa(c, s);
    const codes = await s.recovery.generate(p.identityId);
    await changed(p.identityId, 'recovery_code', p.identityId, 'recovery_codes_regenerated');
    c.header('Cache-Control', 'no-store');
    return c.json({ recoveryCodes: codes });
  });

  return app;
}
