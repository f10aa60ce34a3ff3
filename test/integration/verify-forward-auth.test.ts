import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Client, signIn as signInAs, startTestServer, type TestServer } from '../helpers/server.ts';
import { startVerifyServer, type VerifyServer } from '../helpers/verify-server.ts';

describe('GET /auth/verify (forward-auth) on real Postgres and Redis', () => {
  let t: TestServer;
  let v: VerifyServer;
  const pw = 'a-long-enough-password';
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestServer();
    v = await startVerifyServer(t);
    ids.tina = (await t.services.users.create({ email: 'tina@example.test', password: pw, roles: ['TECHNICIAN'] })).id;
    ids.paul = (await t.services.users.create({ email: 'paul@example.test', password: pw, roles: ['PATHOLOGIST'] })).id;
    ids.nora = (await t.services.users.create({ email: 'nora@example.test', password: pw, roles: [] })).id;
  });
  afterAll(async () => {
    await v?.close();
    await t?.close();
  });

  const signIn = async (email: string) => {
    const { c, token } = await signInAs(v.url, email, pw, { returnTokens: true });
    return { c, token, sid: decodeJwt(token).sid as string };
  };
  /** A caller holding only the bearer token (a proxy forwarding Authorization). */
  const bearer = (token: string, extra: Record<string, string> = {}) =>
    fetch(`${v.url}/auth/verify`, { headers: { authorization: `Bearer ${token}`, ...extra } });
  const authorize = (token: string, permission: string) =>
    fetch(`${v.url}/auth/authorize`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ permission }),
    });

  it('no credential → 401 with a plain Bearer challenge and an empty body', async () => {
    const r = await fetch(`${v.url}/auth/verify`);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Bearer');
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.headers.get('x-auth-user')).toBeNull();
    expect(await r.text()).toBe('');
    const bad = await fetch(`${v.url}/auth/verify`, { headers: { authorization: 'Bearer not-a-real-token-at-all.x.y' } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    const cookie = await fetch(`${v.url}/auth/verify`, { headers: { cookie: 'threshold_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } });
    expect(cookie.status).toBe(401);
  });

  it('session cookie → 200 with identity headers, for any method the proxy forwards', async () => {
    const { c, sid } = await signIn('tina@example.test');
    for (const method of ['GET', 'HEAD', 'POST', 'DELETE']) {
      const r = await c.req(method, '/auth/verify');
      expect(r.status, method).toBe(200);
      expect(r.headers.get('x-auth-user')).toBe(ids.tina);
      expect(r.headers.get('x-auth-email')).toBe('tina@example.test');
      expect(r.headers.get('x-auth-roles')).toBe('TECHNICIAN');
      expect(r.headers.get('x-auth-amr')).toBe('pwd');
      expect(r.headers.get('x-auth-session')).toBe(sid);
      expect(r.body).toBeNull();
    }
    const ok = await c.get('/auth/verify', { 'x-required-permission': 'VIEW_CASES' });
    expect(ok.status).toBe(200);
  });

  it('bearer → 200; the second answer comes from the cache', async () => {
    const { token } = await signIn('tina@example.test');
    const before = v.verifyCache.stats();
    const a = await bearer(token, { 'x-required-permission': 'MANAGE_DATA_INGESTION' });
    expect(a.status).toBe(200);
    expect(a.headers.get('x-auth-user')).toBe(ids.tina);
    const b = await bearer(token);
    expect(b.status).toBe(200);
    expect(b.headers.get('x-auth-roles')).toBe('TECHNICIAN');
    const after = v.verifyCache.stats();
    expect(after.hits - before.hits).toBeGreaterThanOrEqual(1);
  });

  it('a user without roles gets an empty roles header', async () => {
    const { token } = await signIn('nora@example.test');
    const r = await bearer(token);
    expect(r.status).toBe(200);
    expect(r.headers.get('x-auth-roles')).toBe('');
  });

  it('a permission the user lacks → 403, audited once however often the proxy asks', async () => {
    const { token, c } = await signIn('tina@example.test');
    for (let i = 0; i < 3; i++) {
      const r = await bearer(token, { 'x-required-permission': 'MANAGE_USERS', 'x-original-uri': '/admin/users?token=secret' });
      expect(r.status).toBe(403);
      expect(r.headers.get('x-auth-user')).toBeNull();
      expect(await r.text()).toBe('');
    }
    // Same decision as /auth/authorize.
    expect((await c.post('/auth/authorize', { permission: 'MANAGE_USERS' })).status).toBe(403);
    const denials = async () =>
      (
        await t.db.query<{ data: { via?: string; uri?: string } }>(
          "SELECT data FROM audit_events WHERE type = 'authorization.denied' AND actor = $1 AND subject = 'MANAGE_USERS' ORDER BY seq",
          [ids.tina],
        )
      ).rows;
    // Barrier: forward-auth audits in the background; wait for its row, not a guessed pause. The
    // appends serialise on the hash chain, and /auth/authorize's (awaited, asked last) is in too.
    await vi.waitFor(async () => expect((await denials()).some((r) => r.data.via === 'forward_auth')).toBe(true), { timeout: 10_000, interval: 20 });
    const rows = await denials();
    expect(rows.some((r) => r.data.via !== 'forward_auth')).toBe(true);
    const fromVerify = rows.filter((r) => r.data.via === 'forward_auth');
    expect(fromVerify).toHaveLength(1);
    expect(fromVerify[0].data.uri).toBe('/admin/users');
  });

  it('a permission needing MFA with a password-only session → 401 with the RFC 9470 challenge', async () => {
    const { c, token } = await signIn('paul@example.test');
    const r = await bearer(token, { 'x-required-permission': 'CONFIRM_RESULTS' });
    expect(r.status).toBe(401);
    const challenge = r.headers.get('www-authenticate');
    expect(challenge).toBe(
      'Bearer error="insufficient_user_authentication", error_description="Requires mfa", acr_values="urn:threshold:acr:aal2", max_age=900',
    );
    const viaAuthorize = await c.post('/auth/authorize', { permission: 'CONFIRM_RESULTS' });
    expect(viaAuthorize.status).toBe(401);
    expect(viaAuthorize.headers.get('www-authenticate')).toBe(challenge);
    // Cookie callers get the same.
    expect((await c.get('/auth/verify', { 'x-required-permission': 'CONFIRM_RESULTS' })).headers.get('www-authenticate')).toBe(challenge);
  });

  it('refuses a malformed X-Required-Permission instead of ignoring it', async () => {
    const { token } = await signIn('tina@example.test');
    expect((await bearer(token, { 'x-required-permission': 'VIEW CASES; drop' })).status).toBe(400);
  });

  describe('revocation reaches a still-unexpired access token at once (cache warm)', () => {
    const until = (sid: string) => t.services.sessions.byId(sid).then((s) => Math.max(s?.absoluteExpiresAt ?? 0, t.clock.now() + t.config.ACCESS_TOKEN_TTL_SECONDS * 1000));

    const warm = async (token: string, c: Client) => {
      for (let i = 0; i < 2; i++) expect((await bearer(token)).status).toBe(200);
      expect((await c.get('/auth/verify')).status).toBe(200);
      expect((await authorize(token, 'VIEW_CASES')).status).toBe(200);
      const before = v.verifyCache.stats().hits;
      expect((await bearer(token)).status).toBe(200);
      expect(v.verifyCache.stats().hits).toBe(before + 1);
    };
    const expectDead = async (token: string, c: Client) => {
      expect(decodeJwt(token).exp! * 1000).toBeGreaterThan(t.clock.now());
      const r = await bearer(token);
      expect(r.status).toBe(401);
      expect(r.headers.get('x-auth-user')).toBeNull();
      expect((await authorize(token, 'VIEW_CASES')).status).toBe(401);
      expect((await c.get('/auth/verify')).status).toBe(401);
    };

    it('logout', async () => {
      const { c, token, sid } = await signIn('tina@example.test');
      await warm(token, c);
      const u = await until(sid);
      const cookie = c.cookies.get('threshold_session')!;
      expect((await c.post('/auth/logout')).status).toBe(204);
      // Until logout publishes by itself (lead wiring), the test does what logout must do.
      if (!v.wired) await v.revocations.revoke(sid, u);
      c.cookies.set('threshold_session', cookie); // the stolen cookie is dead too
      await expectDead(token, c);
    });

    it('admin revoke', async () => {
      const { c, token, sid } = await signIn('tina@example.test');
      await warm(token, c);
      const u = await until(sid);
      expect(await t.services.sessions.revoke(sid, 'admin')).toBe(true);
      if (!v.wired) await v.revocations.revoke(sid, u);
      await expectDead(token, c);
    });

    it('lock (deny-list only: Postgres still calls the session live) and unlock', async () => {
      const { c, token, sid } = await signIn('tina@example.test');
      await warm(token, c);
      expect(await t.services.sessions.byId(sid)).not.toBeNull();
      await v.revocations.revoke(sid, await until(sid));
      const r = await bearer(token);
      expect(r.status).toBe(401);
      expect((await c.get('/auth/verify')).status).toBe(401);
      // Cold cache too: the miss path consults the deny-list, not only Postgres.
      v.verifyCache.clear();
      expect((await bearer(token)).status).toBe(401);
      if (v.wired) expect((await authorize(token, 'VIEW_CASES')).status).toBe(401);
      await v.revocations.restore(sid);
      expect((await bearer(token)).status).toBe(200);
    });

    it('a revoked session stays denied when Redis has lost the entry: Postgres is the durable truth on a miss', async () => {
      const { c, token, sid } = await signIn('tina@example.test');
      await warm(token, c);
      await t.services.sessions.revoke(sid, 'admin');
      // Simulate a lost broadcast and a flushed deny-list: only the cache TTL or a miss can save us.
      v.verifyCache.clear();
      expect((await bearer(token)).status).toBe(401);
    });
  });
});
