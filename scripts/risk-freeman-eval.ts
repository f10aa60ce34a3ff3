/**
 * Compare a probabilistic scorer (Freeman et al., "Who Are You? A Statistical Approach to
 * Measuring User Authenticity", NDSS 2016) with the weighted rules of default-3 on a labelled
 * JSONL stream (the r-backtest generator's format), and print catch rates at fixed benign
 * challenge rates. Evidence for the README's scorer choice; not used at run time.
 *
 *   npx tsx scripts/risk-freeman-eval.ts /path/to/eval.jsonl
 *
 * Model: score = Π_f P(f) / P(f | user) over two features with hierarchies, IP → /24 → AS →
 * country and user agent → family (browser/OS) → OS, each level smoothed towards its parent with
 * the user's unseen-value mass d/(n+d) (d distinct values, n logins at that level), P(·) the
 * population frequency with add-one smoothing. Histories learn from successful logins only, as
 * the rules' do. A higher score is more suspicious; a step-up fires above a threshold.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { openGeo } from '../src/risk/geo.ts';
import { MemoryRiskHistory } from '../src/risk/history.ts';
import { createNetworks } from '../src/risk/network.ts';
import { DEFAULT_POLICY } from '../src/risk/policy.ts';
import { decide, signalConfig, toRecorded } from '../src/risk/score.ts';
import { historyQuery } from '../src/risk/signals.ts';
import { userAgentFamily } from '../src/risk/user-agent.ts';

type Counts = Map<string, number>;
const inc = (m: Counts, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

/** Population and per-user counts for one feature hierarchy (most specific level first). */
class Hierarchy {
  private global: Counts[];
  private total = 0;
  private users = new Map<string, { n: number; levels: Counts[] }>();
  constructor(private depth: number) {
    this.global = Array.from({ length: depth }, () => new Map());
  }
  record(user: string, path: string[]): void {
    this.total++;
    path.forEach((k, i) => inc(this.global[i], `${i}:${k}`));
    let u = this.users.get(user);
    if (!u) this.users.set(user, (u = { n: 0, levels: Array.from({ length: this.depth }, () => new Map()) }));
    u.n++;
    path.forEach((k, i) => inc(u.levels[i], k));
  }
  /** P(value) in the population (chain of conditional frequencies, add-one smoothed). */
  population(path: string[]): number {
    let p = 1;
    for (let i = this.depth - 1; i >= 0; i--) {
      const c = this.global[i].get(`${i}:${path[i]}`) ?? 0;
      const parent = i === this.depth - 1 ? this.total : (this.global[i + 1].get(`${i + 1}:${path[i + 1]}`) ?? 0);
      p *= (c + 1) / (parent + 2);
    }
    return p;
  }
  /** P(value | user): each level mixes the user's frequency with its parent level's estimate. */
  user(user: string, path: string[]): number {
    const u = this.users.get(user);
    if (!u) return this.population(path);
    let p = 1; // estimate for the level above (none above the root)
    for (let i = this.depth - 1; i >= 0; i--) {
      const lvl = u.levels[i];
      const d = lvl.size;
      const unseen = d / (u.n + d);
      const seen = (lvl.get(path[i]) ?? 0) / u.n;
      // P(value | parent value) in the population, add-one smoothed; the root's parent is everyone.
      const c = this.global[i].get(`${i}:${path[i]}`) ?? 0;
      const parent = i === this.depth - 1 ? this.total : (this.global[i + 1].get(`${i + 1}:${path[i + 1]}`) ?? 0);
      const fromParent = p * ((c + 1) / (parent + 2));
      p = (1 - unseen) * seen + unseen * fromParent;
    }
    return Math.max(p, 1e-12);
  }
}

const file = process.argv[2] ?? '/work/wt/eval/eval-seed1.jsonl';
const networks = createNetworks({ geo: await openGeo() });
const ipH = new Hierarchy(4);
const uaH = new Hierarchy(3);
const rules = new MemoryRiskHistory();
const cfg = signalConfig(DEFAULT_POLICY);
const scored: { label: string; freeman: number; rules: boolean }[] = [];

for await (const line of createInterface({ input: createReadStream(file) })) {
  if (!line) continue;
  const r = JSON.parse(line);
  const input = { identityId: r.user, deviceId: r.deviceId ?? null, ip: r.ip, at: Date.parse(r.ts), userAgent: r.userAgent ?? null };
  const net = networks.describe(input.ip);
  const deviceNew = rules.isDeviceNew(input.identityId, input.deviceId);
  if (!r.passwordCorrect) {
    rules.record(toRecorded(input, 'failed', net, deviceNew));
    continue;
  }
  const ipPath = [input.ip, net.prefix ?? '?', String(net.asn ?? '?'), net.geo?.country ?? '?'];
  const fam = userAgentFamily(input.userAgent) ?? '?';
  const uaPath = [input.userAgent ?? '?', fam, fam.split('/')[1] ?? '?'];
  const score = Math.log(ipH.population(ipPath) / ipH.user(r.user, ipPath)) + Math.log(uaH.population(uaPath) / uaH.user(r.user, uaPath));
  const a = decide(input, rules.facts(historyQuery(input, net, cfg)), net, DEFAULT_POLICY);
  const benign = r.label ? r.label === 'benign' : true;
  // Both models learn from what the live flow would record as a success.
  const succeeded = a.decision === 'allow' || (a.decision === 'step_up' && benign);
  rules.record(toRecorded(input, succeeded ? 'succeeded' : a.decision === 'deny' ? 'denied' : 'stepped_up', net, deviceNew));
  if (succeeded) {
    ipH.record(r.user, ipPath);
    uaH.record(r.user, uaPath);
  }
  if (r.label) scored.push({ label: r.label, freeman: score, rules: a.decision !== 'allow' });
}

const benign = scored.filter((s) => s.label === 'benign');
const attack = scored.filter((s) => s.label === 'attack');
const rate = (xs: typeof scored, f: (s: (typeof scored)[number]) => boolean) => (100 * xs.filter(f).length) / xs.length;
console.log(`rules (default-3): attacks stepped up/denied ${rate(attack, (s) => s.rules).toFixed(2)} %, benign challenged ${rate(benign, (s) => s.rules).toFixed(2)} %`);
const sorted = benign.map((s) => s.freeman).sort((x, y) => y - x);
for (const target of [0.5, 1, 2, 5]) {
  const tau = sorted[Math.floor((target / 100) * sorted.length)];
  console.log(`freeman at ${target} % benign challenged (threshold ${tau.toFixed(2)}): attacks caught ${rate(attack, (s) => s.freeman > tau).toFixed(2)} %`);
}
