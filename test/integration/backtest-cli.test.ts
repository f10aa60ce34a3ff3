import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { generate } from '../../src/backtest/generate.ts';
import { createBacktestStore, backtestProcessor, BACKTEST_JOB } from '../../src/backtest/job.ts';
import { formatRecord } from '../../src/backtest/record.ts';
import { createInProcessJobs } from '../../src/jobs/in-process.ts';
import { ManualClock } from '../../src/clock.ts';
import { openGeo } from '../../src/risk/geo.ts';
import { DEFAULT_POLICY } from '../../src/risk/policy.ts';
import { createTestDb } from '../helpers/db.ts';

const run = promisify(execFile);
const cli = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, ['--import', 'tsx', 'scripts/backtest.ts', ...args], { env: { ...process.env, ...env }, maxBuffer: 32 << 20 })
    .then((r) => ({ code: 0, ...r }))
    .catch((e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }));

describe('npm run backtest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'backtest-cli-'));
  const input = join(dir, 'eval.jsonl');
  let tdb: Awaited<ReturnType<typeof createTestDb>>;
  let lines = 0;

  beforeAll(async () => {
    const { records } = await generate({ seed: 5, users: 150, days: 7, warmupDays: 7, start: Date.UTC(2026, 8, 1), geo: await openGeo(), attackRate: 4 });
    const text = records.map(formatRecord);
    text.splice(10, 0, '{"ts": "2026-09-01T00:00:00Z", "user": "x"}');
    text.splice(20, 0, 'garbage');
    lines = text.length;
    writeFileSync(input, text.join('\n') + '\n');
    writeFileSync(join(dir, 'strict.json'), JSON.stringify({ ...DEFAULT_POLICY, version: 'strict', thresholds: { ...DEFAULT_POLICY.thresholds, stepUp: 10 } }));
    writeFileSync(join(dir, 'broken.json'), JSON.stringify({ version: 'broken', weights: { NEW_DEVICE: -1 } }));
    tdb = await createTestDb();
  });
  afterAll(async () => tdb?.drop());

  it('replays a file: malformed lines by number, plain progress lines off a terminal, tables, decisions and a diff', async () => {
    const out = join(dir, 'decisions.jsonl');
    const json = join(dir, 'summary.json');
    const r = await cli(['--input', input, '--policy', 'default', '--compare', join(dir, 'strict.json'), '--out', out, '--json', json]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`input: ${lines} lines, ${lines - 2} records, 2 malformed (skipped)`);
    expect(r.stdout).toMatch(/line 11: ip: not an IP address/);
    expect(r.stdout).toMatch(/line 21: invalid JSON/);
    expect(r.stdout).toMatch(/caught [\d.]+ % of attacks; benign stepped up or denied [\d.]+ %/);
    expect(r.stdout).toMatch(/stuffing_hosting_abroad\s+attack/);
    expect(r.stdout).toContain('=== compared with strict ===');
    expect(r.stdout).toMatch(/allow->step_up\s+\d+/);
    expect(r.stderr).toMatch(/^progress: \d+ attempts \(100 %\)/m);
    expect(r.stderr).not.toContain('\r');
    const summary = JSON.parse(readFileSync(json, 'utf8'));
    const decisions = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(decisions).toHaveLength(summary.attempts.scored);
    expect(decisions[0]).toMatchObject({ decision: expect.any(String), reasons: expect.any(Array), compare: { decision: expect.any(String) } });
    expect(decisions.filter((d) => d.decision !== d.compare.decision)).toHaveLength(summary.compare.changed);
  });

  it('refuses a policy that is not valid, and a missing input, with exit 2 and a message', async () => {
    const bad = await cli(['--input', input, '--policy', join(dir, 'broken.json')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/broken\.json is not a valid policy/);
    const none = await cli(['--input', join(dir, 'nope.jsonl')]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/cannot read/);
  });

  it('exports stored login_events and back-tests a stored range read-only', async () => {
    const t0 = Date.UTC(2026, 10, 1, 9);
    const ins = (i: number, outcome: string, decision: string | null, ip: string, dev: string) =>
      tdb.db.query(
        `INSERT INTO login_events (id, flow_id, identity_id, device_id, ip, outcome, decision, reasons, created_at) VALUES ($1, $2, NULL, $3, $4, $5, $6, '[]', $7)`,
        [randomUUID(), `f${i}`, dev, ip, outcome, decision, new Date(t0 + i * 60_000)],
      );
    await ins(1, 'failed', null, '81.2.69.142', 'd1');
    await ins(2, 'succeeded', 'allow', '81.2.69.142', 'd1');
    await ins(3, 'denied', 'deny', '5.9.0.1', 'd2');
    const file = join(dir, 'export.jsonl');
    const range = ['--from', '2026-11-01', '--to', '2026-11-02'];
    const ex = await cli([...range, '--export', file], { DATABASE_URL: tdb.url });
    expect(ex.code, ex.stderr).toBe(0);
    const rows = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((r) => [r.passwordCorrect, r.recordedDecision])).toEqual([[false, undefined], [true, 'allow'], [true, 'deny']]);
    const bt = await cli([...range, '--policy', 'active'], { DATABASE_URL: tdb.url });
    expect(bt.code, bt.stderr).toBe(0);
    expect(bt.stdout).toContain('attempts: 3 (2 scored, 1 wrong password');
    expect(bt.stdout).toMatch(/replay fidelity: \d\/2 decisions as recorded live/);
    // Read-only: nothing was written while it ran.
    const n = await tdb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM login_events');
    expect(n.rows[0].n).toBe(3);
  });

  it('runs as an in-process job in the embedded default (same processor, no Redis)', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 30));
    const geo = await openGeo();
    const jobs = createInProcessJobs({ backtest: backtestProcessor({ db: tdb.db, clock, geo, config: {} }) });
    const store = createBacktestStore(tdb.db, clock);
    const text = readFileSync(input, 'utf8');
    const id = await store.create({ policy: DEFAULT_POLICY, compare: null, input: { type: 'jsonl', bytes: text.length, lines }, text, total: lines, createdBy: null });
    await jobs.enqueue('backtest', BACKTEST_JOB, { id }, { jobId: `backtest-${id}` });
    await vi.waitFor(async () => expect((await store.get(id))?.status).toBe('succeeded'), { timeout: 20_000, interval: 50 });
    const row = (await store.get(id))!;
    expect(row.summary!.input.malformed).toBe(2);
    expect(row.processed).toBe(lines - 2);
  });
});
