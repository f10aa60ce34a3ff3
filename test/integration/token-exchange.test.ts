import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, device, IP, signInAdmin, startTestServer, type TestServer } from '../helpers/server.ts';
import { startLoopbackOidc, startWorkloadIssuer, type LoopbackOidc, type WorkloadIssuer } from '../helpers/issuers.ts';

/**
 * Issue 10 §8: RFC 8693 token exchange at /auth/token with tokens from a real oidc-provider on
 * loopback (JWT access tokens, ES256), verified locally against its cached JWKS.
 */
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const AUDIENCE = 'https://threshold.test/api';

let srv: TestServer;
let op: LoopbackOidc;
let other: LoopbackOidc;
let wl: WorkloadIssuer;
let admin: Client;
let opId: string;
const users: Record<string, string> = {};

const api = (ip = IP.london) => new Client(srv.url, { 'x-forwarded-for': ip, 'x-device-id': device('api') });
const exchange = (token: string, extra: Record<string, string> = {}, c = api()) =>
  c.post('/auth/token', { grant_type: GRANT, subject_token: token, subject_token_type: JWT_TYPE, ...extra });
const audits = async (type: string) =>
  (await srv.db.query<{ reason: string; subject: string | null }>('SELECT reason, subject FROM audit_events WHERE type = $1 ORDER BY seq', [type])).rows;
const issuerBody = (o: Record<string, unknown>) => ({ purposes: 'token_exchange', audiences: [AUDIENCE], algorithms: ['ES256'], ...o });

beforeAll(async () => {
  // Sydney's address is on the deny list (SUSPICIOUS_IP): risk answers step_up there.
  srv = await startTestServer({ RISK_DENY_CIDRS: `${IP.sydney}/32` });
  op = await startLoopbackOidc({
    clients: ['alice-app', 'bob-app', 'carol-app', 'dave-app', 'race-app', 'erin-app', 'fay-app'],
    claims: {
      'bob-app': { email: 'bob@example.test', email_verified: true },
      'carol-app': { email: 'carol@example.test', email_verified: false },
      'dave-app': { amr: ['pwd', 'mfa'] },
      'fay-app': { amr: ['pwd', 'otp'] },
    },
  });
  other = await startLoopbackOidc({ clients: ['alice-app'] });
  wl = await startWorkloadIssuer();
  for (const n of ['alice', 'bob', 'carol', 'dave', 'race', 'erin', 'fay']) users[n] = (await srv.services.users.create({ email: `${n}@example.test`, roles: ['PATHOLOGIST'] })).id;
  // Earlier OIDC logins linked these subjects (issuer, sub) to local identities.
  for (const n of ['alice', 'dave', 'race', 'erin', 'fay']) {
    await srv.db.query("INSERT INTO external_identities (id, identity_id, issuer, subject, auth_protocol, created_at) VALUES ($1, $2, $3, $4, 'oidc', now())", [randomUUID(), users[n], op.issuer, `${n}-app`]);
  }
  admin = await signInAdmin(srv);
  const r = await admin.post('/api/trusted-issuers', issuerBody({ issuer: op.issuer, discoveryUrl: op.discoveryUrl, linkByEmail: true }));
  expect(r.status).toBe(201);
  opId = r.body.id;
}, 60_000);

afterAll(async () => {
  await srv?.close();
  await op?.close();
  await other?.close();
  await wl?.close();
});

describe('token exchange with a token from the loopback OpenID Provider', () => {
  it('returns Threshold tokens and a session (amr fed) for a linked subject, recorded and audited', async () => {
    const r = await exchange(await op.token('alice-app', AUDIENCE));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', session: { amr: ['fed'] } });
    expect(r.headers.get('cache-control')).toBe('no-store');
    const me = await api().get('/auth/me', { authorization: `Bearer ${r.body.access_token}` });
    expect(me.status).toBe(200);
    expect(me.body.user.id).toBe(users.alice);
    expect(me.body.session.amr).toEqual(['fed']);
    // The refresh token rotates like any other.
    const rr = await api().post('/auth/token', { grant_type: 'refresh_token', refresh_token: r.body.refresh_token });
    expect(rr.status).toBe(200);
    const ev = await srv.db.query<{ outcome: string; factors: string[] }>('SELECT outcome, factors FROM login_events WHERE identity_id = $1', [users.alice]);
    expect(ev.rows).toEqual([{ outcome: 'succeeded', factors: ['fed'] }]);
    expect((await audits('login.succeeded')).some((a) => a.subject === users.alice && a.reason === 'fed')).toBe(true);
  });

  it('refuses a token from an untrusted issuer, a wrong audience, a second exchange', async () => {
    const untrusted = await exchange(await other.token('alice-app', AUDIENCE));
    expect(untrusted.status).toBe(400);
    expect(untrusted.body.error).toBe('invalid_grant');
    const wrongAud = await exchange(await op.token('alice-app', 'https://elsewhere.test/api'));
    expect(wrongAud.body.error).toBe('invalid_grant');
    const t = await op.token('alice-app', AUDIENCE);
    expect((await exchange(t)).status).toBe(200);
    const again = await exchange(t);
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_grant');
    const reasons = (await audits('token_exchange.refused')).map((a) => a.reason);
    expect(reasons).toEqual(expect.arrayContaining(['UNTRUSTED_ISSUER', 'WRONG_AUDIENCE', 'SUBJECT_TOKEN_REPLAYED']));
  });

  it('50 parallel exchanges of one token: exactly one session', async () => {
    const t = await op.token('race-app', AUDIENCE);
    // From another network: 49 refused replays are failed sign-ins there, and risk counts them.
    const rs = await Promise.all(Array.from({ length: 50 }, () => exchange(t, {}, api(IP.falkenstein))));
    expect(rs.filter((r) => r.status === 200)).toHaveLength(1);
    expect(rs.filter((r) => r.status === 400 && r.body.error === 'invalid_grant')).toHaveLength(49);
    const n = await srv.db.query<{ n: string }>('SELECT count(*) AS n FROM sessions WHERE identity_id = $1', [users.race]);
    expect(Number(n.rows[0].n)).toBe(1);
  });

  it('links by verified email only when the issuer allows it, never an unverified one', async () => {
    const bt = await op.token('bob-app', AUDIENCE);
    const bob = await exchange(bt);
    expect(bob.status).toBe(200);
    const link = await srv.db.query<{ identity_id: string; auth_protocol: string }>('SELECT identity_id, auth_protocol FROM external_identities WHERE issuer = $1 AND subject = $2', [op.issuer, 'bob-app']);
    expect(link.rows).toEqual([{ identity_id: users.bob, auth_protocol: 'token_exchange' }]);
    const carol = await exchange(await op.token('carol-app', AUDIENCE));
    expect(carol.body.error).toBe('invalid_grant');
    expect((await audits('token_exchange.refused')).map((a) => a.reason)).toContain('FED_SUBJECT_NOT_LINKED');
  });

  it('adds mfa only when the issuer is trusted for it and the token says so', async () => {
    const before = await exchange(await op.token('dave-app', AUDIENCE));
    expect(before.body.session.amr).toEqual(['fed']);
    const cur = (await admin.get(`/api/trusted-issuers/${opId}`)).body;
    const { id: _i, source: _s, createdAt: _c, updatedAt: _u, ...body } = cur;
    expect((await admin.req('PUT', `/api/trusted-issuers/${opId}`, { ...body, trustMfa: true })).status).toBe(200);
    const after = await exchange(await op.token('dave-app', AUDIENCE));
    expect(after.body.session.amr).toEqual(['fed', 'mfa']);
    expect(after.body.session.acr).toBe('urn:threshold:acr:aal2');
  });

  it('is risk-scored like a login: a step-up is refused unless the issuer proved MFA it is trusted for; a deny is refused', async () => {
    // erin and fay have no history: a new device on a deny-listed address is a step-up (70 points).
    const plain = await exchange(await op.token('erin-app', AUDIENCE), {}, api(IP.sydney));
    expect(plain.status).toBe(400);
    expect(plain.body).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/^step_up_required/) });
    const ev = await srv.db.query<{ outcome: string; reasons: string[] }>('SELECT outcome, reasons FROM login_events WHERE identity_id = $1', [users.erin]);
    expect(ev.rows).toEqual([{ outcome: 'denied', reasons: expect.arrayContaining(['SUSPICIOUS_IP', 'STEP_UP_REQUIRED']) }]);
    // fay's IdP proved a second factor (otp) and the issuer is trusted for MFA (previous test): the step-up is satisfied.
    const mfa = await exchange(await op.token('fay-app', AUDIENCE), {}, api(IP.sydney));
    expect(mfa.status).toBe(200);
    expect(mfa.body.session.amr).toEqual(['fed', 'mfa']);
    // alice signed in from London before: a new country as well reaches the deny band.
    const denied = await exchange(await op.token('alice-app', AUDIENCE), {}, api(IP.sydney));
    expect(denied.body).toEqual({ error: 'invalid_grant', error_description: 'the sign-in was refused' });
    expect((await audits('token_exchange.refused')).filter((a) => a.subject === users.alice).map((a) => a.reason)).toContain('LOGIN_DENIED');
  });

  it('answers RFC 6749/8693 errors for bad parameters', async () => {
    const t = await op.token('alice-app', AUDIENCE);
    expect((await api().post('/auth/token', { grant_type: GRANT, subject_token: t })).body.error).toBe('invalid_request');
    expect((await exchange(t, { subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' })).body.error).toBe('invalid_request');
    expect((await exchange(t, { audience: 'https://someone-else.test' })).body.error).toBe('invalid_target');
    expect((await exchange('not.a.jwt')).body.error).toBe('invalid_grant');
  });

  it('refuses alg none and an HMAC token "signed" with the public key', async () => {
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: op.issuer, sub: 'alice-app', aud: AUDIENCE, iat: now, exp: now + 300 };
    const none = `${enc({ alg: 'none' })}.${enc(claims)}.`;
    const hs = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(claims)}.${Buffer.alloc(32).toString('base64url')}`;
    for (const t of [none, hs]) expect((await exchange(t)).body.error).toBe('invalid_grant');
  });
});

describe('JWKS cache', () => {
  it('a flood of unknown kids costs the issuer at most one refresh per floor; a rotated key is found after it', async () => {
    const r = await admin.post('/api/trusted-issuers', issuerBody({ issuer: wl.issuer, jwksUri: wl.jwksUri, algorithms: ['RS256'], linkByEmail: true }));
    expect(r.status).toBe(201);
    const claims = (email: string) => ({ iss: wl.issuer, sub: `person-${randomUUID()}`, aud: AUDIENCE, email, email_verified: true, iat: Math.floor(srv.clock.now() / 1000), exp: Math.floor(srv.clock.now() / 1000) + 300 });
    expect((await exchange(await wl.signClaims(claims('alice@example.test')))).status).toBe(200);
    const fetched = wl.counts.jwks;
    const flood = await Promise.all(Array.from({ length: 30 }, () => wl.signClaims(claims('alice@example.test'), { kid: randomUUID() }).then((t) => exchange(t))));
    expect(flood.every((x) => x.body.error === 'invalid_grant')).toBe(true);
    expect(wl.counts.jwks - fetched).toBeLessThanOrEqual(1);
    // The issuer rotates; after the floor a token with the new kid refreshes the set once.
    await wl.rotate();
    srv.clock.advance(31_000);
    expect((await exchange(await wl.signClaims(claims('alice@example.test')))).status).toBe(200);
  });

  it('fails closed with temporarily_unavailable when the JWKS cannot be fetched and none is cached', async () => {
    const down = await startWorkloadIssuer();
    try {
      down.setJwksStatus(500);
      await admin.post('/api/trusted-issuers', issuerBody({ issuer: down.issuer, jwksUri: down.jwksUri, algorithms: ['RS256'] }));
      const now = Math.floor(srv.clock.now() / 1000);
      const r = await exchange(await down.signClaims({ iss: down.issuer, sub: 'x', aud: AUDIENCE, iat: now, exp: now + 300 }));
      expect(r.status).toBe(503);
      expect(r.body.error).toBe('temporarily_unavailable');
    } finally {
      await down.close();
    }
  });

  it('refuses an expired token', async () => {
    const t = await op.token('alice-app', AUDIENCE);
    srv.clock.advance(700_000); // past the provider's 600 s lifetime and the 30 s tolerance
    try {
      const r = await exchange(t);
      expect(r.body.error).toBe('invalid_grant');
      expect((await audits('token_exchange.refused')).map((a) => a.reason)).toContain('EXPIRED');
    } finally {
      srv.clock.advance(-700_000);
    }
  });
});
