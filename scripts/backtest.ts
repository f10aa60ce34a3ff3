// Back-test a risk policy on recorded or generated logins.
// npm run backtest -- --input logins.jsonl --policy policy.json [--compare other.json] [--out decisions.jsonl] [--json summary.json]
// npm run backtest -- --from 2026-11-01 --to 2026-11-30 --policy active      (reads login_events from DATABASE_URL, read-only)
// npm run backtest -- --from 2026-11-01 --to 2026-11-30 --export logins.jsonl (writes the stored events as replayable JSONL)
import { createWriteStream, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { createPgDb } from '../src/db/pg.ts';
import type { Db } from '../src/db/db.ts';
import { openGeo } from '../src/risk/geo.ts';
import { newReadStats, readAttempts, type Attempt } from '../src/backtest/jsonl.ts';
import { readLoginEvents } from '../src/backtest/login-events.ts';
import { resolvePolicy, PolicySourceError } from '../src/backtest/policy-source.ts';
import { runBacktest, type DecisionRow } from '../src/backtest/runner.ts';
import { formatSummary } from '../src/backtest/report.ts';
import { formatAttempt } from '../src/backtest/record.ts';
import { replayFactoryFor } from '../src/backtest/risk-adapter.ts';

const { values } = parseArgs({
  options: {
    input: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    policy: { type: 'string', default: 'default' },
    compare: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'string' },
    export: { type: 'string' },
  },
});

function fail(msg: string): never {
  console.error(`backtest: ${msg}`);
  process.exit(2);
}

if (!values.input && !values.from) fail('give --input FILE.jsonl, or --from/--to with DATABASE_URL');
let db: Db | null = null;
if (values.from || (values.policy && !/\.json$|\/|^default$/.test(values.policy)) || (values.compare && !/\.json$|\/|^default$/.test(values.compare))) {
  if (!process.env.DATABASE_URL) fail('stored events and stored policies need DATABASE_URL');
  db = createPgDb(process.env.DATABASE_URL, 2);
  // Read-only by construction: every statement in this session runs in a read-only transaction.
  await db.query('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY');
}

if (values.export) {
  if (!db) fail('--export needs --from/--to and DATABASE_URL');
  const from = Date.parse(values.from!);
  const to = values.to ? Date.parse(values.to) : Date.now();
  if (!Number.isFinite(from) || !Number.isFinite(to) || to <= from) fail('--from/--to must be dates with from < to');
  const out = createWriteStream(values.export);
  let n = 0;
  for await (const a of readLoginEvents(db, { from, to })) {
    if (!out.write(formatAttempt(a) + '\n')) await once(out, 'drain');
    n++;
  }
  out.end();
  await once(out, 'finish');
  await db.close();
  console.error(`exported ${n} attempts to ${values.export}`);
  process.exit(0);
}

try {
  const policy = await resolvePolicy(values.policy!, db);
  const compare = values.compare ? await resolvePolicy(values.compare, db) : undefined;
  const geo = await openGeo(process.env.GEOIP_DB);
  const env = process.env;
  const factory = replayFactoryFor(geo, {
    RISK_DENY_CIDRS: env.RISK_DENY_CIDRS,
    RISK_MAX_TRAVEL_KMH: env.RISK_MAX_TRAVEL_KMH ? Number(env.RISK_MAX_TRAVEL_KMH) : undefined,
    RISK_FAILURE_WINDOW_SECONDS: env.RISK_FAILURE_WINDOW_SECONDS ? Number(env.RISK_FAILURE_WINDOW_SECONDS) : undefined,
    RISK_TOR_EXITS_FILE: env.RISK_TOR_EXITS_FILE,
    RISK_DENY_CIDRS_FILE: env.RISK_DENY_CIDRS_FILE,
    RISK_ALLOW_CIDRS_FILE: env.RISK_ALLOW_CIDRS_FILE,
  });

  const stats = newReadStats();
  let attempts: AsyncIterable<Attempt>;
  let totalBytes = 0;
  if (values.input) {
    try {
      totalBytes = statSync(values.input).size;
    } catch (e) {
      fail(`cannot read ${values.input}: ${(e as Error).message}`);
    }
    attempts = readAttempts({ path: values.input }, stats);
  } else {
    const from = Date.parse(values.from!);
    const to = values.to ? Date.parse(values.to) : Date.now();
    if (!Number.isFinite(from) || !Number.isFinite(to) || to <= from) fail('--from/--to must be dates with from < to');
    attempts = readLoginEvents(db!, { from, to });
  }

  const out = values.out ? createWriteStream(values.out) : null;
  let buf = '';
  const onDecision = out
    ? async (row: DecisionRow) => {
        buf += JSON.stringify(row) + '\n';
        if (buf.length > 1 << 20) {
          const ok = out.write(buf);
          buf = '';
          if (!ok) await once(out, 'drain');
        }
      }
    : undefined;

  const tty = process.stderr.isTTY;
  const started = Date.now();
  const onProgress = (n: number) => {
    const frac = totalBytes > 0 ? Math.min(1, stats.bytes / totalBytes) : null;
    const rate = Math.round((n / Math.max(Date.now() - started, 1)) * 60_000);
    if (tty) {
      const width = 30;
      const bar = frac === null ? '' : `[${'#'.repeat(Math.round(frac * width)).padEnd(width, '.')}] ${(frac * 100).toFixed(0).padStart(3)}% `;
      process.stderr.write(`\r${bar}${n.toLocaleString('en-US')} attempts, ${rate.toLocaleString('en-US')}/min   `);
    } else {
      console.error(`progress: ${n} attempts${frac === null ? '' : ` (${(frac * 100).toFixed(0)} %)`}, ${rate}/min`);
    }
  };

  const summary = await runBacktest({ attempts, factory, policy, compare, onDecision, onProgress, progressEvery: tty ? 20_000 : 200_000, readStats: stats });
  if (tty) process.stderr.write('\n');
  if (out) {
    if (buf) out.write(buf);
    out.end();
    await once(out, 'finish');
  }
  if (values.json) writeFileSync(values.json, JSON.stringify(summary, null, 2));
  console.log(formatSummary(summary));
} catch (e) {
  if (e instanceof PolicySourceError) fail(e.message);
  throw e;
} finally {
  await db?.close();
}
