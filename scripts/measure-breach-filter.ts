// Memory and lookup time of the shipped breach filter: npx tsx --expose-gc scripts/measure-breach-filter.ts
import { breachFilter, inBreachCorpus, sha1Hex } from '../src/authn/passwords/breach-corpus.ts';
const gc = (globalThis as { gc?: () => void }).gc!;
gc(); const before = process.memoryUsage();
const t0 = performance.now(); const f = breachFilter(); const loadMs = performance.now() - t0;
gc(); const after = process.memoryUsage();
const N = 200_000; const pws = Array.from({ length: N }, (_, i) => `probe-password-${i}`);
let hits = 0; const t1 = performance.now();
for (const p of pws) if (inBreachCorpus(sha1Hex(p))) hits++;
const perLookupUs = ((performance.now() - t1) * 1000) / N;
console.log(JSON.stringify({ entries: f.size, fingerprintBytes: f.fingerprints.byteLength, loadMs: Math.round(loadMs),
  heapDeltaMB: +((after.heapUsed - before.heapUsed) / 2 ** 20).toFixed(2), arrayBuffersDeltaMB: +((after.arrayBuffers - before.arrayBuffers) / 2 ** 20).toFixed(2),
  rssDeltaMB: +((after.rss - before.rss) / 2 ** 20).toFixed(2), lookupUsIncludingSha1: +perLookupUs.toFixed(2), falsePositiveHits: hits, probes: N }));
