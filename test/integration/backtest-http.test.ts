import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { request } from 'node:http';
import { backtestProcessor } from '../../src/backtest/job.ts';
import { newReadStats, readAttempts } from '../../src/backtest/jsonl.ts';
import { readLoginEvents } from '../../src/backtest/login-events.ts';
import { formatAttempt, formatRecord } from '../../src/backtest/record.ts';
import { replayFactoryFor } from '../../src/backtest/risk-adapter.ts';
import { runBacktest, type DecisionRow } from '../../src/backtest/runner.ts';
import { generate } from '../../src/backtest/generate.ts';
import { openGeo } from '../../src/risk/geo.ts';
import { DEFAULT_POLICY, loadActivePolicy } from '../../src/risk/policy.ts';
import { startBacktestWorker } from '../../workers/backtest.worker.ts';
import { TEST_REDIS_URL, uniqueName } from '../helpers/db.ts';
import { ADMIN, Client, device, IP, oathtool, startTestServer, type TestServer } from '../helpers/server.ts';

const CHROME_WIN = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/150.0.0.0 Safari/537.36';
const SAFARI_IOS = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.4 Mobile/15E148 Safari/604.1';
const FIREFOX_LINUX = 'Mozilla/5.0 (X11; Linux x86_64; rv:150.0) Gecko/20100101 Firefox/150.0';

describe('back-testing recorded logins and back-test jobs over HTTP', () => {
  let t: TestServer;
  /** A POST on a fresh socket (no keep-alive pool), for bodies the server may refuse mid-upload. */
  const rawPost = (path: string, body: string, headers: Record<string, string>) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(t.url + path, { method: 'POST', agent: false, headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      // The server may answer and close before the whole body is written.
      req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'EPIPE' || (e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
      req.end(body);
    });
  let admin: Client;
  let worker: ReturnType<typeof startBacktestWorker>;
  const progress: Array<{ id: string; n: number }> = [];
  const users = ['ana', 'ben', 'cho', 'dev'].map((n, i) => ({ email: `${n}@example.test`, password: `person-${i}-has-a-long-password` })); // not containing the address (password policy)

  beforeAll(async () => {
    const queue = uniqueName('backtest');
    t = await startTestServer({ BACKTEST_QUEUE: queue });
    worker = startBacktestWorker({
      redisUrl: TEST_REDIS_URL,
      queueName: queue,
      deps: { db: t.db, clock: t.clock, geo: await openGeo(), config: t.config, progressIntervalMs: 0, onProgress: (id, n) => void progress.push({ id, n }) },
    });
    await worker.worker.waitUntilReady();
    admin = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('admin'), 'user-agent': CHROME_WIN });
    expect((await admin.passwordLogin(ADMIN.email, ADMIN.password)).status).toBe(200);
    for (const u of users) expect((await admin.post('/api/users', { ...u, roles: [] })).status).toBe(201);
  });
  afterAll(async () => {
    await worker?.close();
    await t?.close();
  });

  it('gives the same decision per attempt in a back-test of the stored login_events as the live path did', async () => {
    const at = (ip: string, dev: string, ua: string) => new Client(t.url, { 'x-forwarded-for': ip, 'x-device-id': dev, 'user-agent': ua });
    const [ana, ben, cho, dev] = users;
    const anaLaptop = device('ana-laptop');
    const anaPhone = device('ana-phone');
    const benLaptop = device('ben-laptop');
    const bot = device('bot');
    const script: Array<[Client, { email: string; password: string }, boolean]> = [
      [at(IP.london, anaLaptop, CHROME_WIN), ana, true],
      [at(IP.london, anaLaptop, CHROME_WIN), ana, true],
      [at(IP.london, anaPhone, SAFARI_IOS), ana, true],
      [at(IP.london, benLaptop, FIREFOX_LINUX), ben, true],
      [at(IP.falkenstein, device('x'), CHROME_WIN), ana, false],
      [at(IP.falkenstein, device('y'), CHROME_WIN), ana, false],
      [at(IP.falkenstein, device('z'), CHROME_WIN), ana, true], // hosting, new device, after failures
      [at(IP.sydney, benLaptop, FIREFOX_LINUX), ben, true], // known device on the other side of the world
      [at(IP.mountainView, bot, CHROME_WIN), cho, true], // one device id across accounts
      [at(IP.mountainView, bot, CHROME_WIN), dev, true],
      [at(IP.mountainView, bot, CHROME_WIN), ben, true],
      [at(IP.london, anaLaptop, CHROME_WIN), ana, true],
      [at(IP.london, device('cho-phone'), SAFARI_IOS), cho, false],
      [at(IP.london, device('cho-phone2'), SAFARI_IOS), cho, true],
    ];
    for (const [client, u, right] of script) {
      const r = await client.passwordLogin(u.email, right ? u.password : 'wrong-password-here');
      expect([200, 401, 403]).toContain(r.status);
    }

    const { rows } = await t.db.query<{ decision: string; outcome: string }>(`SELECT decision, outcome FROM login_events WHERE decision IS NOT NULL`);
    const live = new Set(rows.map((r) => r.decision));
    expect(live.has('allow')).toBe(true);
    expect(live.has('step_up') || live.has('deny')).toBe(true);

    // Export the stored events as JSONL (as `npm run backtest -- --export` does), then replay.
    let jsonl = '';
    for await (const a of readLoginEvents(t.db, { from: 0, to: t.clock.now() + 60_000 })) jsonl += formatAttempt(a) + '\n';
    const lines = jsonl.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(script.length + 1);
    expect(lines.filter((l) => l.includes('"passwordCorrect":false')).length).toBe(3);

    const out: DecisionRow[] = [];
    const stats = newReadStats();
    const s = await runBacktest({
      attempts: readAttempts({ text: jsonl }, stats),
      factory: replayFactoryFor(await openGeo(), t.config),
      policy: await loadActivePolicy(t.db),
      readStats: stats,
      onDecision: (r) => void out.push(r),
    });
    expect(stats.malformed).toBe(0);
    expect(s.fidelity).not.toBeNull();
    const decided = rows.filter((r) => !(r.outcome === 'succeeded' && rows.some((x) => x.outcome === 'stepped_up'))).length;
    expect(s.fidelity!.compared).toBeGreaterThanOrEqual(script.filter(([, , ok]) => ok).length);
    expect(decided).toBeGreaterThan(0);
    expect(s.fidelity!.samples).toEqual([]);
    expect(s.fidelity!.agree).toBe(s.fidelity!.compared);
    for (const r of out) expect(r.decision, `line ${r.line}`).toBe(r.recordedDecision);
  });

  it('runs a back-test job on the backtest queue: 202, progress, then the summary', async () => {
    const { records } = await generate({ seed: 3, users: 120, days: 7, warmupDays: 7, start: Date.UTC(2026, 8, 1), geo: await openGeo(), attackRate: 5 });
    const text = records.map(formatRecord).join('\n') + '\nnot json at all\n';
    const r = await admin.post('/api/risk/backtests', { policy: 'default', compare: { ...DEFAULT_POLICY, version: 'candidate', thresholds: { ...DEFAULT_POLICY.thresholds, stepUp: 40 } }, input: { type: 'jsonl', text } });
    expect(r.status).toBe(202);
    expect(r.headers.get('location')).toBe(`/api/risk/backtests/${r.body.id}`);
    expect(r.body).toMatchObject({ status: 'queued', progress: 0, policy: DEFAULT_POLICY.version, compare: 'candidate', input: { type: 'jsonl', lines: records.length + 1 } });
    const id = r.body.id as string;
    let done: any;
    await vi.waitFor(async () => {
      const g = await admin.get(`/api/risk/backtests/${id}`);
      expect(g.status).toBe(200);
      expect(g.body.status).toBe('succeeded');
      done = g.body;
    }, { timeout: 30_000, interval: 100 });
    expect(done.progress).toBe(100);
    expect(done.summary.attempts.total).toBe(records.length);
    expect(done.summary.input.malformed).toBe(1);
    expect(done.summary.input.malformedSamples[0].line).toBe(records.length + 1);
    expect(done.summary.primary.labelled.caughtPct).toBeGreaterThan(50);
    expect(done.summary.compare.policy).toBe('candidate');
    expect(typeof done.summary.compare.changed).toBe('number');
    // Progress was stored while it ran, rising, before the end.
    const mine = progress.filter((p) => p.id === id).map((p) => p.n);
    expect(mine.length).toBeGreaterThan(2);
    expect(mine.some((n) => n < records.length)).toBe(true);
    for (let i = 1; i < mine.length; i++) expect(mine[i]).toBeGreaterThanOrEqual(mine[i - 1]);
    const list = await admin.get('/api/risk/backtests?limit=5');
    expect(list.status).toBe(200);
    expect(list.body.items[0]).toMatchObject({ id, status: 'succeeded', progress: 100 });
    expect(list.body.items[0]).not.toHaveProperty('summary');
    expect((await admin.get('/api/risk/backtests?limit=lots')).body.code).toBe('VALIDATION_FAILED');
    // The uploaded text is dropped once the job is done.
    const { rows } = await t.db.query<{ input_text: string | null }>('SELECT input_text FROM risk_backtests WHERE id = $1', [id]);
    expect(rows[0].input_text).toBeNull();
  });

  it('back-tests the stored login_events over a time range as a job', async () => {
    const r = await admin.post('/api/risk/backtests', { policy: 'active', input: { type: 'events', from: new Date(t.clock.now() - 3_600_000).toISOString(), to: new Date(t.clock.now() + 60_000).toISOString() } });
    expect(r.status).toBe(202);
    expect(r.body.total).toBeGreaterThan(5);
    await vi.waitFor(async () => {
      const g = await admin.get(`/api/risk/backtests/${r.body.id}`);
      expect(g.body.status).toBe('succeeded');
      expect(g.body.summary.fidelity.agree).toBe(g.body.summary.fidelity.compared);
      expect(g.body.summary.attempts.scored).toBeGreaterThan(5);
    }, { timeout: 30_000, interval: 100 });
  });

  it('refuses bad requests with stable problem codes, and non-admins', async () => {
    const bad = async (body: unknown, code: string, status = 400) => {
      const r = await admin.post('/api/risk/backtests', body);
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      expect(r.body.code).toBe(code);
    };
    await bad({}, 'VALIDATION_FAILED');
    await bad({ policy: 'default', input: { type: 'ftp', url: 'x' } }, 'VALIDATION_FAILED');
    await bad({ policy: { version: 'x', weights: {} }, input: { type: 'jsonl', text: 'x' } }, 'VALIDATION_FAILED');
    await bad({ policy: 'no-such-version', input: { type: 'jsonl', text: 'x' } }, 'VALIDATION_FAILED');
    await bad({ policy: 'default', input: { type: 'events', from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' } }, 'VALIDATION_FAILED');
    await bad({ policy: 'default', input: { type: 'jsonl', text: 'x' }, extra: 1 }, 'VALIDATION_FAILED');
    // Over the cap: sent on a socket of its own, as the server may close it before reading all.
    const huge = JSON.stringify({ policy: 'default', input: { type: 'jsonl', text: 'x'.repeat(t.config.BACKTEST_MAX_UPLOAD_BYTES + 10) } });
    const tooBig = await rawPost('/api/risk/backtests', huge, { ...admin.headers, cookie: [...admin.cookies].map(([k, v]) => `${k}=${v}`).join('; ') });
    expect(tooBig.status).toBe(413);
    expect(JSON.parse(tooBig.body).code).toBe('PAYLOAD_TOO_LARGE');
    // Other routes keep the small global body cap.
    const other = await admin.post('/api/users', { email: 'big@example.test', roles: [], displayName: 'x'.repeat(100 * 1024) });
    expect(other.status).toBe(413);

    expect((await admin.get('/api/risk/backtests/00000000-0000-4000-8000-000000000000')).body.code).toBe('NOT_FOUND');
    expect((await admin.get('/api/risk/backtests/not-a-uuid')).status).toBe(404);

    const [ana] = users;
    const user = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('ana-laptop-2'), 'user-agent': CHROME_WIN });
    await user.passwordLogin(ana.email, ana.password);
    const r = await user.post('/api/risk/backtests', { policy: 'default', input: { type: 'jsonl', text: 'x' } });
    expect([401, 403]).toContain(r.status);
    const anon = new Client(t.url, {});
    expect((await anon.get('/api/risk/backtests/00000000-0000-4000-8000-000000000000')).status).toBe(401);
    // The larger upload cap is not a way in: without a session the answer is 401, body unread.
    const big = await rawPost('/api/risk/backtests', JSON.stringify({ policy: 'default', input: { type: 'jsonl', text: 'x'.repeat(1 << 20) } }), {});
    expect(big.status).toBe(401);
    expect(JSON.parse(big.body).code).toBe('UNAUTHENTICATED');
  });

  it('replays a passed step-up as the live history kept it: the new device is known afterwards', async () => {
    const eve = { email: 'eve@example.test', password: 'a long password of her own' };
    expect((await admin.post('/api/users', { ...eve, roles: [] })).status).toBe(201);
    // A home line of her own (London's address has seen many new devices in this file: velocity).
    const home = new Client(t.url, { 'x-forwarded-for': '88.152.190.4', 'x-device-id': device('eve-home'), 'user-agent': CHROME_WIN });
    expect((await home.passwordLogin(eve.email, eve.password)).body.step).toBe('done');
    const e = await home.post('/auth/mfa/totp');
    expect((await home.post(`/auth/mfa/totp/${e.body.id}/confirm`, { code: oathtool(e.body.secret, t.clock.now()) })).status).toBe(200);
    const from = t.clock.now() + 1;

    const away = new Client(t.url, { 'x-forwarded-for': IP.mountainView, 'x-device-id': device('eve-away'), 'user-agent': SAFARI_IOS });
    const r = await away.passwordLogin(eve.email, eve.password);
    expect(r.body.step).toBe('choose_method');
    expect((await away.post(`/auth/login/${r.flowId}`, { type: 'choose', method: 'totp' })).body.step).toBe('totp');
    t.clock.advance(30_000);
    expect((await away.post(`/auth/login/${r.flowId}`, { type: 'totp', code: oathtool(e.body.secret, t.clock.now()) })).body.step).toBe('done');
    const again = await away.passwordLogin(eve.email, eve.password);
    expect(again.body.step).toBe('done'); // the device is known now

    let jsonl = '';
    for await (const a of readLoginEvents(t.db, { from: 0, to: t.clock.now() + 60_000 })) jsonl += formatAttempt(a) + '\n';
    const mine = jsonl.trim().split('\n').map((l) => JSON.parse(l)).filter((a) => Date.parse(a.ts) >= from);
    expect(mine.map((a) => [a.recordedDecision, a.stepUpPassed])).toEqual([['step_up', true], ['allow', undefined]]);
    const out: DecisionRow[] = [];
    const s = await runBacktest({
      attempts: readAttempts({ text: jsonl }, newReadStats()),
      factory: replayFactoryFor(await openGeo(), t.config),
      policy: await loadActivePolicy(t.db),
      onDecision: (row) => void out.push(row),
    });
    expect(s.fidelity!.disagree).toBe(0);
    expect(out.slice(-2).map((row) => row.decision)).toEqual(['step_up', 'allow']);
  });

  it('a job is claimed once: a duplicate delivery leaves it alone', async () => {
    const r = await admin.post('/api/risk/backtests', { policy: 'default', input: { type: 'jsonl', text: '{"bad":1}\n' } });
    await vi.waitFor(async () => expect((await admin.get(`/api/risk/backtests/${r.body.id}`)).body.status).toBe('succeeded'), { timeout: 15_000, interval: 100 });
    const run = backtestProcessor({ db: t.db, clock: t.clock, geo: await openGeo(), config: t.config });
    expect(await run('backtest.run', { id: r.body.id }, 'dup')).toEqual({ id: r.body.id, status: 'skipped' });
    await expect(run('backtest.run', { id: "x'; DROP TABLE risk_backtests; --" }, 'evil')).rejects.toThrow(/invalid/);
    // A job whose worker died mid-run (silent for long) is taken up again when redelivered;
    // one still beating is not.
    const again = await admin.post('/api/risk/backtests', { policy: 'default', input: { type: 'jsonl', text: '{"bad":2}\n' } });
    await vi.waitFor(async () => expect((await admin.get(`/api/risk/backtests/${again.body.id}`)).body.status).toBe('succeeded'), { timeout: 15_000, interval: 100 });
    await t.db.query(`UPDATE risk_backtests SET status = 'running', summary = NULL, heartbeat_at = $2 WHERE id = $1`, [again.body.id, new Date(t.clock.now() - 60_000)]);
    expect(await run('backtest.run', { id: again.body.id }, 'dup2')).toEqual({ id: again.body.id, status: 'skipped' });
    await t.db.query(`UPDATE risk_backtests SET heartbeat_at = $2 WHERE id = $1`, [again.body.id, new Date(t.clock.now() - 11 * 60_000)]);
    await t.db.query(`UPDATE risk_backtests SET input_text = $2 WHERE id = $1`, [again.body.id, '{"bad":3}\n']);
    expect(await run('backtest.run', { id: again.body.id }, 'redelivered')).toEqual({ id: again.body.id, status: 'succeeded' });
    expect((await admin.get(`/api/risk/backtests/${again.body.id}`)).body.summary.input.malformed).toBe(1);
    expect((await admin.get(`/api/risk/backtests/${r.body.id}`)).body.summary.input.malformed).toBe(1);
  });
});
