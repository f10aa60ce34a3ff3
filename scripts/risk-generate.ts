// Generate a seeded, labelled evaluation set of login traffic (JSONL) for back-testing.
// npm run risk:generate -- --seed 1 --users 2000 --days 30 --out eval.jsonl
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { openGeo } from '../src/risk/geo.ts';
import { generate } from '../src/backtest/generate.ts';
import { formatRecord } from '../src/backtest/record.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    users: { type: 'string', default: '2000' },
    days: { type: 'string', default: '30' },
    'warmup-days': { type: 'string', default: '14' },
    start: { type: 'string', default: '2026-09-01' },
    'attack-rate': { type: 'string', default: '1' },
    out: { type: 'string' },
    geoip: { type: 'string' },
  },
});

const int = (name: string, v: string | undefined, min: number): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer >= ${min}`);
    process.exit(2);
  }
  return n;
};
const start = Date.parse(`${values.start}T00:00:00Z`);
if (!Number.isFinite(start)) {
  console.error('--start must be a date, e.g. 2026-09-01');
  process.exit(2);
}
const attackRate = Number(values['attack-rate']);
if (!(attackRate >= 0)) {
  console.error('--attack-rate must be a number >= 0');
  process.exit(2);
}

const t0 = Date.now();
const geo = await openGeo(values.geoip);
const { records, stats } = await generate({
  seed: int('seed', values.seed, 0),
  users: int('users', values.users, 1),
  days: int('days', values.days, 1),
  warmupDays: int('warmup-days', values['warmup-days'], 0),
  start,
  geo,
  attackRate,
});

const out = values.out ? createWriteStream(values.out) : process.stdout;
let buf = '';
for (const r of records) {
  buf += formatRecord(r) + '\n';
  if (buf.length > 1 << 20) {
    if (!out.write(buf)) await once(out, 'drain');
    buf = '';
  }
}
if (buf) out.write(buf);
if (values.out) {
  (out as ReturnType<typeof createWriteStream>).end();
  await once(out, 'finish');
}
console.error(
  `generated ${records.length} lines (${stats.benign} benign, ${stats.attack} attack, ${stats.unlabelled} unlabelled warm-up) ` +
    `for ${stats.users} users in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
);
console.error(Object.entries(stats.byKind).sort().map(([k, n]) => `  ${k}: ${n}`).join('\n'));
