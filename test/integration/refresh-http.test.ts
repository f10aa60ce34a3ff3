import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, device, IP, oathtool, startTestServer, type TestServer } from '../helpers/server.ts';

/** Refresh tokens through the real app: issued at login, rotated, ended with the session. */
describe('refresh tokens in the running app', () => {
  let t: TestServer;
  const pw = 'rita-has-a-long-password';
  beforeAll(async () => {
    t = await startTestServer();
    await t.services.users.create({ email: 'rita@example.test', password: pw, roles: ['PATHOLOGIST'] });
  });
  afterAll(async () => t?.close());

  const refresh = (token: string, form = true) =>
    fetch(`${t.url}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json', 'x-forwarded-for': IP.london },
      body: form ? new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }).toString() : JSON.stringify({ grant_type: 'refresh_token', refresh_token: token }),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, string> }));

  const login = async (name: string) => {
    const c = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device(name) });
    const r = await c.passwordLogin('rita@example.test', pw, { returnTokens: true });
    expect(r.body.step).toBe('done');
    expect(r.body.tokens.refresh_token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    return { c, tokens: r.body.tokens as Record<string, string> };
  };

  it('rotates on each use and ends with logout', async () => {
    const { c, tokens } = await login('rita-a');
    const first = await refresh(tokens.refresh_token);
    expect(first.status).toBe(200);
    expect(first.body.refresh_token).not.toBe(tokens.refresh_token);
    const second = await refresh(first.body.refresh_token, false);
    expect(second.status).toBe(200);
    const me = await new Client(t.url).get('/auth/me', { authorization: `Bearer ${second.body.access_token}` });
    expect(me.status).toBe(200);
    expect(me.body.session.amr).toEqual(['pwd']);
    expect((await c.post('/auth/logout')).status).toBe(204);
    const after = await refresh(second.body.refresh_token);
    expect(after).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });

  it('a replayed refresh token locks the session: its cookie, tokens and newest refresh token all fail', async () => {
    const { c, tokens } = await login('rita-b');
    const next = await refresh(tokens.refresh_token);
    expect(next.status).toBe(200);
    const replay = await refresh(tokens.refresh_token);
    expect(replay.body.error).toBe('invalid_grant');
    expect((await refresh(next.body.refresh_token)).body.error).toBe('invalid_grant');
    expect((await c.get('/auth/check')).body.authenticated).toBe(false);
    expect((await new Client(t.url).get('/auth/verify', { authorization: `Bearer ${next.body.access_token}` })).status).toBe(401);
    const { rows } = await t.db.query<{ type: string }>("SELECT type FROM audit_events WHERE type = 'refresh.reuse_detected'");
    expect(rows.length).toBe(1);
  });

  it('survives a step-up: the family follows the session to its new id', async () => {
    const u = await t.services.users.byEmail('rita@example.test');
    const e = await t.services.totp.enrol(u!.id, u!.email);
    await t.services.totp.confirm(u!.id, e.id, oathtool(e.secret, t.clock.now()));
    const { c, tokens } = await login('rita-c');
    const up = await c.post('/auth/stepup', { acr_values: 'urn:threshold:acr:aal2' });
    t.clock.advance(30_000);
    const done = await c.post(`/auth/stepup/${up.body.id}`, { type: 'totp', code: oathtool(e.secret, t.clock.now()) });
    expect(done.body.step).toBe('done');
    const r = await refresh(tokens.refresh_token);
    expect(r.status).toBe(200);
    const claims = JSON.parse(Buffer.from(r.body.access_token.split('.')[1], 'base64url').toString());
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
  });

  it('answers malformed requests per RFC 6749', async () => {
    const bad = await fetch(`${t.url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=password&username=a' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toBe('unsupported_grant_type');
    expect((await refresh('nonsense-token-value-that-is-long-enough-000000')).body.error).toBe('invalid_grant');
  });
});
