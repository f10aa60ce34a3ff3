import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, device, IP, signInAdmin, startTestServer, type TestServer } from '../helpers/server.ts';
import { startWorkloadIssuer, type WorkloadIssuer } from '../helpers/issuers.ts';

/**
 * Adversarial review: the okta scheme hands the session bound to a token's replay key to whoever
 * presents that key again. The key was the issuer's `jti` alone: a second subject's token with
 * the same `jti` (an issuer that reuses or lets clients pick it) was answered with the first
 * subject's session — a session takeover. Tokens of two subjects never share a key now.
 */
const AUDIENCE = 'https://threshold.test/api';
let srv: TestServer;
let wl: WorkloadIssuer;
const users: Record<string, string> = {};

beforeAll(async () => {
  srv = await startTestServer();
  wl = await startWorkloadIssuer();
  for (const n of ['eve', 'vic']) {
    users[n] = (await srv.services.users.create({ email: `${n}@example.test`, roles: ['TECHNICIAN'] })).id;
    await srv.db.query("INSERT INTO external_identities (id, identity_id, issuer, subject, auth_protocol, created_at) VALUES ($1, $2, $3, $4, 'token_exchange', now())", [randomUUID(), users[n], wl.issuer, `${n}-sub`]);
  }
  const admin = await signInAdmin(srv);
  const r = await admin.post('/api/trusted-issuers', { issuer: wl.issuer, jwksUri: wl.jwksUri, audiences: [AUDIENCE], purposes: 'token_exchange', algorithms: ['RS256'] });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}, 60_000);
afterAll(async () => {
  await srv?.close();
  await wl?.close();
});

describe('okta scheme replay keys', () => {
  it("a token of another subject with the same jti gets its own session, never the first subject's", async () => {
    const now = Math.floor(srv.clock.now() / 1000);
    const jti = 'same-jti-for-both';
    const token = (sub: string) => wl.signClaims({ iss: wl.issuer, sub, aud: AUDIENCE, jti, iat: now, exp: now + 300 });
    const known = async (t: string) => new Client(srv.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('api') }).get('/auth/known-user', { authorization: `okta ${t}` });
    const vic = await known(await token('vic-sub'));
    expect(vic.status).toBe(200);
    expect(vic.body.user.id).toBe(users.vic);
    const eve = await known(await token('eve-sub'));
    expect(eve.status).toBe(200);
    expect(eve.body.user.id).toBe(users.eve);
    expect(eve.body.session.id).not.toBe(vic.body.session.id);
    // The same token again still finds its own session.
    expect((await known(await token('vic-sub'))).body.session.id).toBe(vic.body.session.id);
  });
});
