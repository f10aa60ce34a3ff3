// Memory and lookup time of the shipped breach filter: npx tsx --expose-gc scripts/measure-breach-filter.ts
import { breachFilter, inBreachCorpus, sha1Hex } from '../src/authn/passwords/breach-corpus.ts';
import { contains, keyOf } from '../src/authn/passwords/fuse-filter.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
gc();
const before = process.memoryUsage();
const t0 = performance.now();
const f = breachFilter();
const loadMs = performance.now() - t0;
gc();
const after = process.memoryUsage();
const N = 200_000;
const pws = Array.from({ length: N }, (_, i) => `probe-password-${i}`);
let hits = 0;
const t1 = performance.now();
for (const p of pws) if (inBreachCorpus(sha1Hex(p))) hits++;
const fullUs = ((performance.now() - t1) * 1000) / N;
// The filter probe alone (three array reads), keys hashed beforehand.
const keys = pws.map(keyOf);
let probeHits = 0;
const t2 = performance.now();
for (const k of keys) if (contains(f, k)) probeHits++;
const probeUs = ((performance.now() - t2) * 1000) / N;
const mb = (b: number) => +(b / 2 ** 20).toFixed(2);
console.log(
  JSON.stringify({
    entries: f.size,
    fingerprintBytes: f.fingerprints.byteLength,
    loadMs: Math.round(loadMs),
    heapDeltaMB: mb(after.heapUsed - before.heapUsed),
    arrayBuffersDeltaMB: mb(after.arrayBuffers - before.arrayBuffers),
    rssDeltaMB: mb(after.rss - before.rss),
    lookupUsWithSha1: +fullUs.toFixed(2),
    probeUsAlone: +probeUs.toFixed(3),
    falsePositives: { hits, probeHits, probes: N, rate: hits / N },
  }),
);
