import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signIn as signInAs, startTestServer, type TestServer } from '../helpers/server.ts';
import { startVerifyServer, type VerifyServer } from '../helpers/verify-server.ts';
import { startNginx, startRecordingUpstream, type Nginx } from '../helpers/nginx.ts';

/**
 * A real nginx (Debian package) running deploy/nginx/threshold.conf in front of a loopback
 * application, asking Threshold's /auth/verify over its real socket through auth_request.
 */
describe('nginx auth_request → /auth/verify (reference config)', () => {
  let t: TestServer;
  let v: VerifyServer;
  let nginx: Nginx;
  let app: Awaited<ReturnType<typeof startRecordingUpstream>>;
  const pw = 'a-long-enough-password';
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestServer();
    v = await startVerifyServer(t);
    app = await startRecordingUpstream();
    nginx = await startNginx({ threshold: v.url, upstream: app.url });
    ids.tina = (await t.services.users.create({ email: 'tina@example.test', password: pw, roles: ['TECHNICIAN'] })).id;
    ids.paul = (await t.services.users.create({ email: 'paul@example.test', password: pw, roles: ['PATHOLOGIST'] })).id;
    ids.nora = (await t.services.users.create({ email: 'nora@example.test', password: pw, roles: [] })).id;
    ids.ada = (await t.services.users.create({ email: 'ada@example.test', password: pw, roles: ['ADMIN'] })).id;
  });
  afterAll(async () => {
    await nginx?.stop();
    await app?.close();
    await v?.close();
    await t?.close();
  });

  /** Signs in through nginx (Threshold's /auth/ is public there), like a browser would. */
  const signIn = async (email: string) => {
    const { c, token } = await signInAs(nginx.url, email, pw, { returnTokens: true });
    return { c, token };
  };
  /** Run `f`, answer what the application saw meanwhile. */
  const seenDuring = async <T>(f: () => Promise<T>) => {
    const before = app.seen.length;
    const r = await f();
    return { r, seen: app.seen.slice(before) };
  };

  it('no session → 401 with the Bearer challenge, and the application sees nothing', async () => {
    const { r, seen } = await seenDuring(() => fetch(`${nginx.url}/cases/42`, { headers: { 'x-auth-user': ids.ada, 'x-auth-roles': 'ADMIN' } }));
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Bearer');
    expect(seen).toEqual([]);
    // A browser is sent to the sign-in page instead.
    const html = await fetch(`${nginx.url}/cases/42?x=1`, { headers: { accept: 'text/html' }, redirect: 'manual' });
    expect(html.status).toBe(302);
    expect(html.headers.get('location')).toMatch(/\/login\?rd=\/cases\/42\?x=1$/);
    // Threshold's own endpoints stay public.
    expect((await fetch(`${nginx.url}/.well-known/jwks.json`)).status).toBe(200);
    expect((await fetch(`${nginx.url}/_threshold_verify`)).status).toBe(404);
  });

  it('allowed → 200 and the application sees the identity headers, not the spoofed ones', async () => {
    const { c } = await signIn('tina@example.test');
    const { r, seen } = await seenDuring(() =>
      c.get('/cases/42', { 'X-Auth-User': ids.ada, 'x-auth-roles': 'ADMIN', 'X-AUTH-AMR': 'hwk mfa', 'X-Auth-Email': 'ada@example.test' }),
    );
    expect(r.status).toBe(200);
    expect(r.body).toBe('hello from the app');
    expect(seen).toHaveLength(1);
    const h = seen[0].headers;
    expect(h['x-auth-user']).toBe(ids.tina);
    expect(h['x-auth-email']).toBe('tina@example.test');
    expect(h['x-auth-roles']).toBe('TECHNICIAN');
    expect(h['x-auth-amr']).toBe('pwd');
    expect(h['x-auth-session']).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen[0].url).toBe('/cases/42');
  });

  it('a user without roles cannot smuggle X-Auth-Roles through an empty verdict', async () => {
    const { c } = await signIn('nora@example.test');
    const { r, seen } = await seenDuring(() => c.get('/cases', { 'x-auth-roles': 'ADMIN', 'x-auth-session': 'forged' }));
    expect(r.status).toBe(200);
    expect(seen[0].headers['x-auth-user']).toBe(ids.nora);
    expect(seen[0].headers['x-auth-roles']).toBeUndefined();
    expect(seen[0].headers['x-auth-session']).not.toBe('forged');
  });

  it('a bearer token works the same; a POST body reaches the application, never Threshold', async () => {
    const { token } = await signIn('tina@example.test');
    const { r, seen } = await seenDuring(() =>
      fetch(`${nginx.url}/cases/42/notes`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' }, body: 'a note' }),
    );
    expect(r.status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'POST', body: 'a note' });
    expect(seen[0].headers['x-auth-user']).toBe(ids.tina);
  });

  it('a permission the user lacks → 403 and the application sees nothing; one who holds it passes', async () => {
    const { c } = await signIn('tina@example.test');
    const denied = await seenDuring(() => c.get('/admin/users'));
    expect(denied.r.status).toBe(403);
    expect(denied.seen).toEqual([]);
    const { c: ada } = await signIn('ada@example.test');
    const allowed = await seenDuring(() => ada.get('/admin/users'));
    expect(allowed.r.status).toBe(200);
    expect(allowed.seen[0].headers['x-auth-roles']).toBe('ADMIN');
  });

  it('a permission needing recent MFA → 401 carrying the RFC 9470 challenge through nginx', async () => {
    const { c } = await signIn('paul@example.test');
    expect((await c.get('/cases')).status).toBe(200);
    const { r, seen } = await seenDuring(() => c.get('/results/confirm/7'));
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe(
      'Bearer error="insufficient_user_authentication", error_description="Requires mfa", acr_values="urn:threshold:acr:aal2", max_age=900',
    );
    expect(seen).toEqual([]);
    // A browser is sent to the step-up page, not to the sign-in page.
    const html = await fetch(`${nginx.url}/results/confirm/7`, {
      headers: { accept: 'text/html,*/*', cookie: `threshold_session=${c.cookies.get('threshold_session')}` },
      redirect: 'manual',
    });
    expect(html.status).toBe(302);
    expect(html.headers.get('location')).toMatch(/\/stepup\?rd=\/results\/confirm\/7$/);
  });

  it('logout through nginx kills the session cookie and the unexpired access token at once', async () => {
    const { c, token } = await signIn('tina@example.test');
    const sid = decodeJwt(token).sid as string;
    const cookie = c.cookies.get('threshold_session')!;
    expect((await c.get('/cases')).status).toBe(200);
    const viaBearer = () => fetch(`${nginx.url}/cases`, { headers: { authorization: `Bearer ${token}` } });
    expect((await viaBearer()).status).toBe(200);
    const until = (await t.services.sessions.byId(sid))!.absoluteExpiresAt;
    expect((await c.post('/auth/logout')).status).toBe(204);
    if (!v.wired) await v.revocations.revoke(sid, until);
    c.cookies.set('threshold_session', cookie);
    const { r, seen } = await seenDuring(async () => [await c.get('/cases'), await viaBearer()] as const);
    expect(r.map((x) => x.status)).toEqual([401, 401]);
    expect(seen).toEqual([]);
  });

  it('the reference config runs without a warning in nginx\'s error log', () => {
    const bad = nginx.errorLog().split('\n').filter((l) => /\[(warn|error|crit|alert|emerg)\]/.test(l));
    expect(bad).toEqual([]);
  });
});
