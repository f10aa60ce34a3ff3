import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, device, IP, signInAdmin, startTestServer, type TestServer } from '../helpers/server.ts';
import { startLoopbackOidc, type LoopbackOidc } from '../helpers/issuers.ts';

/**
 * Issue 10 §8, the compatibility schemes of the Okta session-exchange design (demandKnownUser):
 * `Authorization: okta <jwt>` and `Authorization: sid <session token>` at GET /auth/known-user.
 */
const AUDIENCE = 'https://threshold.test/api';
let srv: TestServer;
let op: LoopbackOidc;
const users: Record<string, string> = {};

const api = () => new Client(srv.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('api') });
const known = (authorization?: string) => api().get('/auth/known-user', authorization === undefined ? {} : { authorization });
const sessionsOf = async (id: string) => Number((await srv.db.query<{ n: string }>('SELECT count(*) AS n FROM sessions WHERE identity_id = $1', [id])).rows[0].n);

beforeAll(async () => {
  // A short idle window, so a bound session can expire while the IdP token is still valid.
  srv = await startTestServer({ SESSION_IDLE_SECONDS: '60' });
  op = await startLoopbackOidc({ clients: ['ann-app', 'ben-app', 'cid-app', 'dot-app'] });
  for (const n of ['ann', 'ben', 'cid', 'dot']) {
    users[n] = (await srv.services.users.create({ email: `${n}@example.test`, roles: ['TECHNICIAN'] })).id;
    await srv.db.query("INSERT INTO external_identities (id, identity_id, issuer, subject, auth_protocol, created_at) VALUES ($1, $2, $3, $4, 'token_exchange', now())", [randomUUID(), users[n], op.issuer, `${n}-app`]);
  }
  const admin = await signInAdmin(srv);
  const r = await admin.post('/api/trusted-issuers', { issuer: op.issuer, jwksUri: op.jwksUri, audiences: [AUDIENCE], purposes: 'token_exchange', algorithms: ['ES256'] });
  expect(r.status).toBe(201);
}, 60_000);

afterAll(async () => {
  await srv?.close();
  await op?.close();
});

describe('demandKnownUser (GET /auth/known-user)', () => {
  it('missing header, unknown scheme, malformed value → 401', async () => {
    for (const h of [undefined, 'Bearer abc.def.ghi', 'Basic dXNlcjpwdw==', 'okta', 'sid ', 'OKTA not-a-jwt']) {
      const r = await known(h);
      expect(r.status, String(h)).toBe(401);
      expect(r.body.code).toBe('UNAUTHENTICATED');
    }
  });

  it('okta <jwt>: the first use starts a session, later uses find the same one', async () => {
    const t = await op.token('ann-app', AUDIENCE);
    const first = await known(`okta ${t}`);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ user: { id: users.ann, email: 'ann@example.test' }, scheme: 'okta', session: { amr: ['fed'] } });
    const again = await known(`Okta ${t}`);
    expect(again.body.session.id).toBe(first.body.session.id);
    expect(await sessionsOf(users.ann)).toBe(1);
  });

  it('okta <jwt>: 20 parallel first uses of one token share one session', async () => {
    const t = await op.token('dot-app', AUDIENCE);
    const rs = await Promise.all(Array.from({ length: 20 }, () => known(`okta ${t}`)));
    expect(rs.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(new Set(rs.map((r) => r.body.session.id)).size).toBe(1);
    expect(await sessionsOf(users.dot)).toBe(1);
  });

  it('okta with a wrong-audience token → 401', async () => {
    expect((await known(`okta ${await op.token('ann-app', 'https://elsewhere.test')}`)).status).toBe(401);
  });

  it('sid <session token> from a token exchange → the user and session; an unknown one → 401', async () => {
    const ex = await api().post('/auth/token', {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: await op.token('ben-app', AUDIENCE),
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    });
    expect(ex.status).toBe(200);
    const r = await known(`sid ${ex.body.session.token}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ user: { id: users.ben }, scheme: 'sid', session: { id: ex.body.session.id } });
    expect((await known(`sid ${randomBytes(32).toString('base64url')}`)).status).toBe(401);
    // The session id (public: it is in access tokens' sid) is not the credential.
    expect((await known(`sid ${ex.body.session.id}`)).status).toBe(401);
  });

  it('an expired session is deleted and answers 401, by either scheme', async () => {
    const t = await op.token('cid-app', AUDIENCE);
    const ok = await known(`okta ${t}`);
    expect(ok.status).toBe(200);
    const ex = await api().post('/auth/token', {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: await op.token('cid-app', AUDIENCE),
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    });
    expect(ex.status).toBe(200);
    expect(await sessionsOf(users.cid)).toBe(2);
    srv.clock.advance(61_000); // past the 60 s idle window; the IdP token (600 s) is still valid
    try {
      const viaOkta = await known(`okta ${t}`);
      expect(viaOkta.status).toBe(401);
      const viaSid = await known(`sid ${ex.body.session.token}`);
      expect(viaSid.status).toBe(401);
      expect(await sessionsOf(users.cid)).toBe(0);
    } finally {
      srv.clock.advance(-61_000);
    }
  });
});
