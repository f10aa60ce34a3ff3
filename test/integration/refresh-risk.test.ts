import { randomBytes, randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAudit, type Audit } from '../../src/audit/audit.ts';
import { ManualClock } from '../../src/clock.ts';
import { Sealer } from '../../src/crypto/seal.ts';
import type { Db } from '../../src/db/db.ts';
import { tokenRoutes } from '../../src/http/routes/token.ts';
import { openGeo, type Geo } from '../../src/risk/geo.ts';
import { createSessionService, type SessionService } from '../../src/session/sessions.ts';
import { createTokenService, type TokenService } from '../../src/tokens/access-token.ts';
import { createKeyStore } from '../../src/tokens/keys.ts';
import { createRefreshService, STEP_UP_REQUIRED_DESCRIPTION, type RefreshDeps, type RefreshResult } from '../../src/tokens/refresh.ts';
import { createTestDb } from '../helpers/db.ts';

/** Real DB-IP Lite lookups: London, another London network, Mountain View. */
const LONDON = '81.2.69.142';
const LONDON_SAME_24 = '81.2.69.200';
const LONDON_OTHER_NET = '81.2.80.1';
const MOUNTAIN_VIEW = '8.8.8.8';
const dev = 'device-risk-test-000001';

let drop: () => Promise<void>;
let db: Db;
let clock: ManualClock;
let audit: Audit;
let geo: Geo;
let sessions: SessionService;
let tokens: TokenService;

beforeAll(async () => {
  const t = await createTestDb();
  drop = t.drop;
  db = t.db;
  clock = new ManualClock();
  audit = createAudit(db, clock);
  geo = await openGeo();
  sessions = createSessionService({ db, clock, idleSeconds: 1800, absoluteSeconds: 43200 });
  tokens = createTokenService(createKeyStore(db, new Sealer(randomBytes(32)), clock), clock, { issuer: 'https://i.test', audience: 'https://a.test', ttlSeconds: 600 });
});
afterAll(async () => drop?.());

type Verdict = 'allow' | 'step_up' | 'deny';
function world(verdict: Verdict | (() => Promise<Verdict>), extra: Partial<RefreshDeps> = {}) {
  const calls: Array<{ identityId: string; ip: string; deviceId: string | null; country: string | null }> = [];
  const svc = createRefreshService({
    db, clock, audit, sessions, tokens, geo, ttlSeconds: 3600,
    rescore: async (o) => {
      calls.push(o);
      return typeof verdict === 'function' ? verdict() : verdict;
    },
    ...extra,
  });
  return { svc, calls };
}

async function signIn(svc: ReturnType<typeof world>['svc'], ip = LONDON) {
  const identityId = randomUUID();
  await db.query('INSERT INTO identities (id, email, created_at) VALUES ($1, $2, $3)', [identityId, `${identityId}@example.test`, new Date(clock.now())]);
  const { session } = await sessions.create({ identityId, amr: ['pwd'], acr: 'urn:threshold:acr:aal1', authTime: clock.now() / 1000, factorTimes: {}, deviceId: dev, ip, country: 'GB' });
  const token = await svc.issue({ sessionId: session.id, identityId, ip, deviceId: dev });
  return { identityId, sessionId: session.id, token };
}

const ok = (r: RefreshResult) => {
  if (!r.ok) throw new Error(`refused: ${r.error_description}`);
  return r;
};
const family = async (sessionId: string) =>
  (await db.query<{ revoked_at: Date | null; revoke_reason: string | null }>('SELECT revoked_at, revoke_reason FROM refresh_families WHERE session_id = $1', [sessionId])).rows[0];
const audited = async (sessionId: string) =>
  (await db.query<{ type: string; reason: string | null }>("SELECT type, reason FROM audit_events WHERE subject = $1 AND type LIKE 'refresh.%' ORDER BY seq", [sessionId])).rows;

describe('refresh from a changed network or country re-scores risk', () => {
  it('the same /24 in the same country: no re-score', async () => {
    const { svc, calls } = world('deny');
    const u = await signIn(svc);
    ok(await svc.refresh(u.token, { ip: LONDON_SAME_24, deviceId: dev }));
    expect(calls).toHaveLength(0);
  });

  it('another network in the same country: re-scored with the client context; allow rotates, and the new network becomes the reference', async () => {
    const { svc, calls } = world('allow');
    const u = await signIn(svc);
    const r = ok(await svc.refresh(u.token, { ip: LONDON_OTHER_NET, deviceId: dev }));
    expect(calls).toEqual([{ identityId: u.identityId, ip: LONDON_OTHER_NET, deviceId: dev, country: 'GB' }]);
    ok(await svc.refresh(r.refresh_token, { ip: LONDON_OTHER_NET, deviceId: dev }));
    expect(calls).toHaveLength(1);
  });

  it('step_up: invalid_grant with the documented description; the token still works where it was', async () => {
    const { svc, calls } = world('step_up');
    const u = await signIn(svc);
    const r = await svc.refresh(u.token, { ip: MOUNTAIN_VIEW, deviceId: dev });
    expect(r).toEqual({ ok: false, error: 'invalid_grant', error_description: 'step_up_required: re-authenticate with POST /auth/stepup or a new login' });
    expect(STEP_UP_REQUIRED_DESCRIPTION).toBe('step_up_required: re-authenticate with POST /auth/stepup or a new login');
    expect(calls[0]).toMatchObject({ country: 'US', ip: MOUNTAIN_VIEW });
    expect(await family(u.sessionId)).toMatchObject({ revoked_at: null });
    expect(await audited(u.sessionId)).toContainEqual({ type: 'refresh.refused', reason: 'STEP_UP_REQUIRED' });
    ok(await svc.refresh(u.token, { ip: LONDON, deviceId: dev }));
  });

  it('after a step-up from the new place (session rotated, family rebound there), refresh from there needs no re-score', async () => {
    const { svc, calls } = world('step_up');
    const u = await signIn(svc);
    expect((await svc.refresh(u.token, { ip: MOUNTAIN_VIEW, deviceId: dev })).ok).toBe(false);
    const raised = await sessions.elevate(u.sessionId, { amr: ['pwd', 'otp', 'mfa'], acr: 'urn:threshold:acr:aal2', factorTimes: {} });
    await svc.rebindSession(u.sessionId, raised!.session.id, { ip: MOUNTAIN_VIEW, deviceId: dev });
    const r = ok(await svc.refresh(u.token, { ip: MOUNTAIN_VIEW, deviceId: dev }));
    expect(calls).toHaveLength(1);
    expect(await tokens.verify(r.access_token)).toMatchObject({ sid: raised!.session.id, amr: ['pwd', 'otp', 'mfa'] });
  });

  it('deny: the family is revoked (the session is not) and later uses fail everywhere', async () => {
    const { svc } = world('deny');
    const u = await signIn(svc);
    const r = await svc.refresh(u.token, { ip: MOUNTAIN_VIEW, deviceId: dev });
    expect(r).toEqual({ ok: false, error: 'invalid_grant', error_description: 'refresh refused at high risk; every token of this sign-in is revoked' });
    expect(await family(u.sessionId)).toMatchObject({ revoke_reason: 'risk_deny' });
    expect(await sessions.byId(u.sessionId)).not.toBeNull();
    expect(await audited(u.sessionId)).toContainEqual({ type: 'refresh.refused', reason: 'RISK_DENY' });
    expect(await svc.refresh(u.token, { ip: LONDON, deviceId: dev })).toMatchObject({ ok: false, error_description: 'refresh token revoked' });
  });

  it('a scorer that does not answer in time fails closed to a step-up', async () => {
    const { svc } = world(() => new Promise<Verdict>(() => undefined), { rescoreTimeoutMs: 100 });
    const u = await signIn(svc);
    const r = await svc.refresh(u.token, { ip: MOUNTAIN_VIEW, deviceId: dev });
    expect(r).toMatchObject({ ok: false, error_description: STEP_UP_REQUIRED_DESCRIPTION });
    expect(await audited(u.sessionId)).toContainEqual({ type: 'refresh.refused', reason: 'RISK_UNAVAILABLE' });
  });

  it('over HTTP: 400 invalid_grant with the step-up description', async () => {
    const { svc } = world('step_up');
    const u = await signIn(svc);
    const app = new Hono().route('/auth/token', tokenRoutes({ refresh: svc, clientIp: () => MOUNTAIN_VIEW, deviceId: () => dev }));
    const res = await app.request('/auth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: u.token }).toString(),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_grant', error_description: STEP_UP_REQUIRED_DESCRIPTION });
  });
});
