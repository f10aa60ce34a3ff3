import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/http/app.ts';
import { Client, device, enrolTotp, IP, oathtool, signIn, signInAdmin, startTestServer, type TestServer } from '../helpers/server.ts';

/** GET /metrics counts what happened in a scenario (issue 11 §6), and only for the token holder. */
describe('/metrics', () => {
  let t: TestServer;
  const TOKEN = 'metrics-token-' + 'x'.repeat(40);
  const pw = 'a-long-enough-password';
  beforeAll(async () => {
    t = await startTestServer({ METRICS_TOKEN: TOKEN, LOCKOUT_THRESHOLD: '3', RATE_LIMIT_FLOW_STARTS_PER_MINUTE: '20' });
    await signInAdmin(t);
    for (const n of ['mia', 'max', 'lou', 'pat']) await t.services.users.create({ email: `${n}@example.test`, password: pw, roles: ['PATHOLOGIST'] });
  });
  afterAll(async () => t?.close());

  /** Every sample of the exposition, `name{labels}` → value. */
  const scrape = async (): Promise<Map<string, number>> => {
    const r = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = new Map<string, number>();
    for (const line of (await r.text()).split('\n')) {
      const x = /^([a-z_:]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
      if (x) m.set(x[1], Number(x[2]));
    }
    return m;
  };
  /** Sum of the samples of `name` whose labels include every given pair. */
  const sum = (m: Map<string, number>, name: string, labels: Record<string, string> = {}) =>
    [...m].filter(([k]) => (k === name || k.startsWith(`${name}{`)) && Object.entries(labels).every(([l, v]) => k.includes(`${l}="${v}"`))).reduce((a, [, v]) => a + v, 0);

  it('refuses a scrape without the token, or with a wrong one', async () => {
    for (const h of [{} as Record<string, string>, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${TOKEN}x` }, { authorization: TOKEN }]) {
      const r = await fetch(`${t.url}/metrics`, { headers: h });
      expect(r.status).toBe(401);
      expect(((await r.json()) as { code: string }).code).toBe('UNAUTHENTICATED');
    }
    // Without METRICS_TOKEN the route does not exist: metrics are never open by default.
    const off = createApp({ ...t.services, config: { ...t.config, METRICS_TOKEN: undefined } });
    const r = await off.request('/metrics', { headers: { authorization: `Bearer ${TOKEN}` } });
    expect([r.status, ((await r.json()) as { code: string }).code]).toEqual([404, 'NOT_FOUND']);
  });

  it('counts good logins, failures, a lockout, a step-up, a refresh reuse, rate-limit hits and token checks', async () => {
    const before = await scrape();
    const N = 3;
    const M = 2;
    for (let i = 0; i < N; i++) await signIn(t.url, 'mia@example.test', pw, { device: device('mia') });
    for (let i = 0; i < M; i++) await new Client(t.url, { 'x-device-id': device('max') }).passwordLogin('max@example.test', 'wrong-password');
    // A lockout: three wrong passwords for lou (LOCKOUT_THRESHOLD=3).
    for (let i = 0; i < 3; i++) await new Client(t.url, { 'x-device-id': device('lou') }).passwordLogin('lou@example.test', 'wrong-password');
    // A step-up of a live session with TOTP.
    const pat = (await signIn(t.url, 'pat@example.test', pw, { device: device('pat') })).c;
    const secret = await enrolTotp(pat, t);
    const flow = await pat.post('/auth/stepup', { permission: 'WRITE_BACK_EPIC' });
    expect(flow.status).toBe(201);
    expect((await pat.post(`/auth/stepup/${flow.body.id}`, { type: 'choose', method: 'totp' })).body.step).toBe('totp');
    t.clock.advance(30_000);
    const up = await pat.post(`/auth/stepup/${flow.body.id}`, { type: 'totp', code: oathtool(secret, t.clock.now()) });
    expect(up.body.step, JSON.stringify(up.body)).toBe('done');
    // A refresh token used twice: the second use is reuse.
    const { body } = await signIn(t.url, 'mia@example.test', pw, { device: device('mia'), returnTokens: true });
    const refresh = (tok: string) =>
      fetch(`${t.url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': IP.london }, body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: tok }) });
    expect((await refresh(body.tokens.refresh_token)).status).toBe(200);
    expect((await refresh(body.tokens.refresh_token)).status).toBe(400);
    // Token verification: one good access token, one forged.
    const access = (await signIn(t.url, 'mia@example.test', pw, { device: device('mia'), returnTokens: true })).token;
    expect((await fetch(`${t.url}/auth/verify`, { headers: { authorization: `Bearer ${access}` } })).status).toBe(200);
    expect((await fetch(`${t.url}/auth/verify`, { headers: { authorization: `Bearer ${access.slice(0, -4)}AAAA` } })).status).toBe(401);
    // Flow starts from one address beyond its per-minute limit (20).
    const burst = await Promise.all(Array.from({ length: 22 }, () => new Client(t.url, { 'x-forwarded-for': IP.falkenstein }).req('POST', '/auth/login', {})));
    const limited = burst.filter((r) => r.status === 429).length;
    expect(limited).toBe(2);

    const after = await scrape();
    const d = (name: string, labels: Record<string, string> = {}) => sum(after, name, labels) - sum(before, name, labels);
    expect(d('threshold_logins_total', { outcome: 'succeeded' })).toBe(N + 1 + 2); // mia ×3, pat, mia with tokens ×2
    expect(d('threshold_logins_total', { outcome: 'failed' })).toBe(M + 3);
    expect(d('threshold_lockouts_total', { counter: 'password' })).toBe(1);
    expect(d('threshold_stepups_total', { stage: 'started' })).toBe(1);
    expect(d('threshold_stepups_total', { stage: 'completed' })).toBe(1);
    expect(d('threshold_refresh_reuse_total')).toBe(1);
    expect(d('threshold_rate_limited_total')).toBe(limited);
    expect(d('threshold_token_verifications_total', { result: 'valid' })).toBeGreaterThanOrEqual(1);
    expect(d('threshold_token_verifications_total', { result: 'invalid' })).toBe(1);
    // Every login that reached a risk decision was counted by decision and level.
    expect(d('threshold_risk_decisions_total', { decision: 'allow' })).toBeGreaterThanOrEqual(N + 1 + 2);
    expect(d('threshold_job_duration_seconds_count', { outcome: 'ok' })).toBeGreaterThanOrEqual(N);
    expect(d('threshold_audit_events_total', { type: 'refresh.reuse_detected' })).toBe(1);
    expect(d('threshold_http_request_duration_seconds_count', { route: '/auth/login/:id', status: '2xx' })).toBeGreaterThanOrEqual(N);
    expect(sum(after, 'threshold_queue_workers', { queue: t.queue })).toBe(1);
    expect(after.has(`threshold_queue_jobs{queue="${t.queue}",state="waiting"}`)).toBe(true);
    t.clock.offset = 0;
  });
});
