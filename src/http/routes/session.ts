import { Hono } from 'hono';
import { deleteCookie } from 'hono/cookie';
import { z } from 'zod';
import { AppError } from '../../errors.ts';
import { readJson } from '../body.ts';
import { authenticate, requireFreshMfa, requirePermission, requirePrincipal, sessionCookieName } from '../middleware/auth.ts';
import { presentSession, presentSessionListing } from '../present.ts';
import { routeDocs } from '../openapi/doc.ts';
import type { Env, Services } from '../services.ts';

const PasswordChangeSchema = z
  .object({ currentPassword: z.string().max(1024), newPassword: z.string().max(1024), endOtherSessions: z.boolean().optional() })
  .strict();
const AuthorizeSchema = z
  .object({
    permission: z.string().min(1).max(128),
    namespace: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/).optional().describe('Role bindings of this namespace count, with the global ones'),
  })
  .strict();

const json = (description: string) => ({ description, schema: { jsonSchema: { type: 'object' } } });

export const sessionDocs = routeDocs('/auth', 'Session', {
  'GET /check': { summary: 'Whether the caller is signed in (never 401; does not count as activity)', auth: 'optional', responses: { 200: { description: '`{ authenticated }`', schema: z.object({ authenticated: z.boolean() }) } } },
  'GET /me': {
    summary: 'The signed-in user, roles, permissions and session',
    auth: 'session',
    responses: { 200: json('`{ user: { id, email, displayName, emailVerified }, roles, permissions, passwordChangeRequired, session: { id, amr, acr, authTime, expiresAt, idleExpiresAt, warning, warningEndsAt? } }`') },
    errors: ['UNAUTHENTICATED'],
  },
  'POST /password': {
    summary: 'Change the password (fresh MFA needed when the user has second factors)',
    description:
      'The new password meets the password policy (length, no breached password, not the identifier or the product name): otherwise `PASSWORD_REJECTED` with `reasons`. Every other session ends unless `endOtherSessions: false`.',
    auth: 'session',
    body: PasswordChangeSchema,
    responses: { 200: { description: '`{ changed, endedSessions }`', schema: z.object({ changed: z.literal(true), endedSessions: z.number().int() }) } },
    errors: ['UNAUTHENTICATED', 'STEP_UP_REQUIRED', 'INVALID_CREDENTIALS', 'ACCOUNT_LOCKED', 'PASSWORD_REJECTED', 'UNSUPPORTED_MEDIA_TYPE'],
  },
  'GET /sessions': { summary: "The caller's sessions", auth: 'session', responses: { 200: { description: 'Session listings', schema: { jsonSchema: { type: 'array', items: { type: 'object' } } } } }, errors: ['UNAUTHENTICATED'] },
  'DELETE /sessions/:id': { summary: 'Sign one of your sessions out', auth: 'session', responses: { 204: { description: 'Revoked' } }, errors: ['UNAUTHENTICATED', 'NOT_FOUND'] },
  'POST /logout': { summary: 'Sign out: revoke this session and its refresh tokens', auth: 'optional', responses: { 204: { description: 'Signed out (also when not signed in)' } } },
  'GET /report/:token': { summary: '"This wasn\'t me": a confirmation page for the link in a new-sign-in email', auth: 'none', responses: { 200: { description: 'HTML', contentType: 'text/html', schema: { jsonSchema: { type: 'string' } } } } },
  'POST /report/:token': {
    summary: '"This wasn\'t me": sign the reported device out',
    auth: 'none',
    headers: { Accept: '`application/json` for a JSON answer instead of HTML' },
    responses: { 200: { description: 'Revoked: `{ revoked: true }` (or HTML)', schema: z.object({ revoked: z.literal(true) }) } },
    errors: ['NOT_FOUND'],
  },
  'POST /authorize': {
    summary: 'May the caller use a permission (in a namespace)? (RFC 9470 challenge when a step-up would do)',
    description: 'Any principal: session cookie, bearer access token, API key. PERMISSION_UNKNOWN is answered only to administrators; others get PERMISSION_DENIED for a name that does not exist.',
    auth: 'session',
    body: AuthorizeSchema,
    responses: { 200: { description: 'Allowed', schema: z.object({ allow: z.literal(true) }) } },
    errors: ['UNAUTHENTICATED', 'STEP_UP_REQUIRED', 'PERMISSION_DENIED', 'PERMISSION_UNKNOWN', 'VALIDATION_FAILED', 'UNSUPPORTED_MEDIA_TYPE'],
  },
});

export function sessionRoutes(s: Services) {
  const app = new Hono<Env>();

  // Status reads do not count as activity: a polling page must not keep a session alive.
  app.get('/check', async (c) => c.json({ authenticated: (await authenticate(c, s, 'check')) !== null }));

  app.get('/me', async (c) => {
    const p = await requirePrincipal(c, s, 'check');
    const [user, session, { roles, permissions: perms }, passwordChangeRequired] = await Promise.all([
      s.users.get(p.identityId),
      s.sessions.byId(p.sessionId),
      s.rbac.accessOf(p.identityId),
      s.compromised.changeRequired(p.identityId),
    ]);
    if (!user || !session) throw new AppError('UNAUTHENTICATED');
    return c.json({
      user: { id: user.id, email: user.email, displayName: user.displayName, emailVerified: user.emailVerified },
      roles,
      permissions: perms.map((x) => x.name),
      // The password was found breached (at sign-in): ask for a new one (POST /auth/password).
      passwordChangeRequired,
      session: {
        ...presentSession(session),
        warning: session.state === 'warning',
        // When the warned-of expiry arrives: activity moves it, unless it is the absolute one.
        ...(session.state === 'warning' ? { warningEndsAt: new Date(Math.min(session.idleExpiresAt, session.absoluteExpiresAt)).toISOString() } : {}),
      },
    });
  });

  /**
   * Change the password and, unless asked not to, end every other session (a password that is
   * changed may have been known to someone else: their sessions go with it).
   */
  app.post('/password', async (c) => {
    const b = await readJson(c, PasswordChangeSchema);
    const p = await requirePrincipal(c, s);
    // A user with second factors proves one recently: a stolen password-only session cannot take over.
    const methods = await s.factors.methodsOf(p.identityId);
    if (methods.length) await requireFreshMfa(c, s);
    if (!(await s.passwords.verifyCurrent(p.identityId, b.currentPassword))) throw new AppError('INVALID_CREDENTIALS');
    const user = await s.users.get(p.identityId);
    await s.passwordPolicy.assertNewPassword({ password: b.newPassword, identifier: user?.email, hasSecondFactor: methods.length > 0 });
    await s.passwords.setPassword(p.identityId, b.newPassword);
    const endOthers = b.endOtherSessions !== false;
    const ended = endOthers ? await s.sessions.revokeAllFor(p.identityId, 'password_changed', p.sessionId) : [];
    await s.audit.append({ type: 'password.changed', actor: p.identityId, subject: p.identityId, reason: endOthers ? 'END_OTHER_SESSIONS' : 'KEEP_SESSIONS', data: { ended: ended.length } });
    await s.notifyUser?.(p.identityId, 'factor_changed', { factor: 'password', action: 'changed' }, `password-${Math.floor(s.clock.now() / 1000)}`);
    return c.json({ changed: true, endedSessions: ended.length });
  });

  app.get('/sessions', async (c) => {
    const p = await requirePrincipal(c, s);
    const list = await s.sessions.listFor(p.identityId);
    return c.json(list.map((x) => presentSessionListing(x, p.sessionId)));
  });

  app.delete('/sessions/:id', async (c) => {
    const p = await requirePrincipal(c, s);
    const id = c.req.param('id');
    const mine = (await s.sessions.listFor(p.identityId)).some((x) => x.id === id);
    if (!mine) throw new AppError('NOT_FOUND');
    await s.sessions.revoke(id, 'user_revoked');
    await s.audit.append({ type: 'session.revoked', actor: p.identityId, subject: id, reason: 'USER_REVOKED' });
    return c.body(null, 204);
  });

  app.post('/logout', async (c) => {
    const p = await authenticate(c, s);
    if (p) {
      await s.sessions.revoke(p.sessionId, 'logout');
      await s.audit.append({ type: 'session.revoked', actor: p.identityId, subject: p.sessionId, reason: 'LOGOUT' });
    }
    deleteCookie(c, sessionCookieName(s.config.secureCookies), { path: '/', secure: s.config.secureCookies });
    return c.body(null, 204);
  });

  // "This wasn't me": GET only shows a confirmation (mail scanners prefetch links); POST acts.
  app.get('/report/:token', (c) => {
    c.header('Cache-Control', 'no-store');
    c.header('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'");
    // The form's POST then carries this page's Origin (under no-referrer a browser sends `Origin: null`).
    c.header('Referrer-Policy', 'same-origin');
    return c.html(
      '<!doctype html><meta charset="utf-8"><title>Report a sign-in</title>' +
        '<body style="font-family:sans-serif;max-width:32rem;margin:3rem auto">' +
        '<h1>Wasn\'t you?</h1><p>Signing that device out takes effect at once. Then change your password.</p>' +
        '<form method="post"><button type="submit">Sign that device out</button></form></body>',
    );
  });

  app.post('/report/:token', async (c) => {
    const r = await s.reports.report(c.req.param('token'));
    if (!r) throw new AppError('NOT_FOUND', { detail: 'This link was already used or has expired.' });
    const wantsJson = (c.req.header('accept') ?? '').includes('application/json');
    if (wantsJson) return c.json({ revoked: true });
    return c.html('<!doctype html><meta charset="utf-8"><title>Signed out</title><p>That device has been signed out. Please change your password.</p>');
  });

  app.post('/authorize', async (c) => {
    const b = await readJson(c, AuthorizeSchema);
    await requirePermission(c, s, b.permission, b.namespace);
    return c.json({ allow: true });
  });

  return app;
}
