import type { PolicyDocument } from '../risk/policy.ts';
import { outcomeOf, type Decision, type ReplayDecision, type ReplayEngine, type ReplayEngineFactory } from './engine.ts';
import type { Attempt } from './jsonl.ts';

/** One scored attempt as written to the decisions JSONL. */
export interface DecisionRow {
  line: number;
  ts: string;
  user: string;
  ip: string;
  deviceId: string | null;
  label?: 'benign' | 'attack';
  kind?: string;
  decision: Decision;
  score: number;
  reasons: string[];
  compare?: ReplayDecision;
  recordedDecision?: Decision;
}

type Mix = Record<Decision, number>;
const mix = (): Mix => ({ allow: 0, step_up: 0, deny: 0 });
const pct = (n: number, d: number): number | null => (d === 0 ? null : Math.round((n / d) * 10000) / 100);

export interface PolicySummary {
  policy: string;
  scored: number;
  decisions: Mix;
  /** Percentages of scored attempts. */
  stepUpRate: number | null;
  denyRate: number | null;
  labelled: null | {
    attack: Mix;
    benign: Mix;
    /** Attacks stepped up or denied, % of labelled attacks. */
    caughtPct: number | null;
    /** Benign attempts stepped up or denied, % of labelled benign. */
    benignStepUpPct: number | null;
    benignDenyPct: number | null;
  };
  reasons: Record<string, { total: number; benign: number; attack: number; unlabelled: number }>;
  kinds: Array<{ kind: string; label: string; n: number } & Mix & { flaggedPct: number | null }>;
}

export interface BacktestSummary {
  input: { lines: number; records: number; malformed: number; malformedSamples: Array<{ line: number; error: string }>; outOfOrder: number };
  attempts: { total: number; scored: number; wrongPassword: number; unlabelledScored: number };
  /** Replays of recorded logins: how many decisions agree with what the live path decided. */
  fidelity: null | { compared: number; agree: number; disagree: number; samples: Array<{ line: number; recorded: Decision; replayed: Decision }> };
  primary: PolicySummary;
  compare?: PolicySummary & {
    changed: number;
    transitions: Record<string, number>;
    /** Per reason: how many changed attempts gained it / lost it under the compared policy. */
    reasonsGained: Record<string, number>;
    reasonsLost: Record<string, number>;
    samples: Array<{ line: number; user: string; label?: string; kind?: string; from: ReplayDecision; to: ReplayDecision }>;
  };
  elapsedMs: number;
  perMinute: number;
}

class Tally {
  decisions = mix();
  attack = mix();
  benign = mix();
  scored = 0;
  reasons = new Map<string, { total: number; benign: number; attack: number; unlabelled: number }>();
  kinds = new Map<string, { kind: string; label: string; n: number } & Mix>();

  add(a: Attempt, d: ReplayDecision): void {
    this.scored++;
    this.decisions[d.decision]++;
    if (a.label === 'attack') this.attack[d.decision]++;
    else if (a.label === 'benign') this.benign[d.decision]++;
    for (const r of d.reasons) {
      let e = this.reasons.get(r);
      if (!e) this.reasons.set(r, (e = { total: 0, benign: 0, attack: 0, unlabelled: 0 }));
      e.total++;
      e[a.label ?? 'unlabelled']++;
    }
    if (a.label) {
      const key = `${a.label}\u0000${a.kind ?? '(none)'}`;
      let k = this.kinds.get(key);
      if (!k) this.kinds.set(key, (k = { kind: a.kind ?? '(none)', label: a.label, n: 0, ...mix() }));
      k.n++;
      k[d.decision]++;
    }
  }

  summary(policy: string): PolicySummary {
    const nAttack = this.attack.allow + this.attack.step_up + this.attack.deny;
    const nBenign = this.benign.allow + this.benign.step_up + this.benign.deny;
    return {
      policy,
      scored: this.scored,
      decisions: { ...this.decisions },
      stepUpRate: pct(this.decisions.step_up, this.scored),
      denyRate: pct(this.decisions.deny, this.scored),
      labelled:
        nAttack + nBenign === 0
          ? null
          : {
              attack: { ...this.attack },
              benign: { ...this.benign },
              caughtPct: pct(this.attack.step_up + this.attack.deny, nAttack),
              benignStepUpPct: pct(this.benign.step_up + this.benign.deny, nBenign),
              benignDenyPct: pct(this.benign.deny, nBenign),
            },
      reasons: Object.fromEntries([...this.reasons].sort((x, y) => y[1].total - x[1].total)),
      kinds: [...this.kinds.values()]
        .sort((x, y) => (x.label === y.label ? (x.kind < y.kind ? -1 : 1) : x.label === 'attack' ? -1 : 1))
        .map((k) => ({ ...k, flaggedPct: pct(k.step_up + k.deny, k.n) })),
    };
  }
}

/** Hands attempts on in time order, reordering within a bounded window (a nearly sorted export). */
class ReorderBuffer {
  private heap: Attempt[] = [];
  constructor(private readonly size: number) {}
  private less(a: Attempt, b: Attempt): boolean {
    return a.at < b.at || (a.at === b.at && a.line < b.line);
  }
  push(a: Attempt): Attempt | null {
    const h = this.heap;
    h.push(a);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
    return h.length > this.size ? this.pop() : null;
  }
  pop(): Attempt | null {
    const h = this.heap;
    if (h.length === 0) return null;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l], h[m])) m = l;
        if (r < h.length && this.less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

export interface BacktestOptions {
  attempts: AsyncIterable<Attempt>;
  factory: ReplayEngineFactory;
  policy: PolicyDocument;
  compare?: PolicyDocument;
  onDecision?: (row: DecisionRow) => void | Promise<void>;
  /** Called every `progressEvery` attempts with the count so far. */
  onProgress?: (processed: number) => void | Promise<void>;
  progressEvery?: number;
  /** Read stats of the source, copied into the summary. */
  readStats?: { lines: number; records: number; malformed: number; malformedSamples: Array<{ line: number; error: string }> };
  /** Attempts held to put a nearly sorted input in time order. */
  reorderWindow?: number;
  /** Changed attempts kept as samples in the compare summary. */
  maxSamples?: number;
}

const isPromise = <T>(v: T | Promise<T>): v is Promise<T> => typeof (v as { then?: unknown })?.then === 'function';

/**
 * Replay attempts in time order through one engine per policy (each with its own history) and
 * tally decisions. Only correct-password attempts are scored, as only they reach risk scoring
 * live; wrong-password attempts are recorded as failures that feed history.
 */
export async function runBacktest(opts: BacktestOptions): Promise<BacktestSummary> {
  const started = performance.now();
  const primary = await opts.factory(opts.policy);
  const other: ReplayEngine | null = opts.compare ? await opts.factory(opts.compare) : null;
  const tA = new Tally();
  const tB = new Tally();
  const every = opts.progressEvery ?? 10_000;
  const maxSamples = opts.maxSamples ?? 50;
  const buffer = new ReorderBuffer(opts.reorderWindow ?? 10_000);
  let lastAt = -Infinity;
  let outOfOrder = 0;
  let total = 0;
  let wrong = 0;
  let unlabelledScored = 0;
  let changed = 0;
  let fidCompared = 0;
  let fidAgree = 0;
  const fidSamples: Array<{ line: number; recorded: Decision; replayed: Decision }> = [];
  const transitions: Record<string, number> = {};
  const gained: Record<string, number> = {};
  const lost: Record<string, number> = {};
  const samples: NonNullable<BacktestSummary['compare']>['samples'] = [];

  const step = async (a: Attempt): Promise<void> => {
    if (a.at < lastAt) outOfOrder++; // arrived later than the window could fix: replayed late
    else lastAt = a.at;
    total++;
    if (!a.passwordCorrect) {
      wrong++;
      primary.record(a, 'failed');
      other?.record(a, 'failed');
    } else {
      let d = primary.score(a);
      if (isPromise(d)) d = await d;
      primary.record(a, outcomeOf(a, d));
      tA.add(a, d);
      if (!a.label) unlabelledScored++;
      if (a.recordedDecision) {
        fidCompared++;
        if (a.recordedDecision === d.decision) fidAgree++;
        else if (fidSamples.length < maxSamples) fidSamples.push({ line: a.line, recorded: a.recordedDecision, replayed: d.decision });
      }
      let c: ReplayDecision | undefined;
      if (other) {
        let x = other.score(a);
        if (isPromise(x)) x = await x;
        c = x;
        other.record(a, outcomeOf(a, c));
        tB.add(a, c);
        if (c.decision !== d.decision) {
          changed++;
          const key = `${d.decision}->${c.decision}`;
          transitions[key] = (transitions[key] ?? 0) + 1;
          for (const r of c.reasons) if (!d.reasons.includes(r)) gained[r] = (gained[r] ?? 0) + 1;
          for (const r of d.reasons) if (!c.reasons.includes(r)) lost[r] = (lost[r] ?? 0) + 1;
          if (samples.length < maxSamples) samples.push({ line: a.line, user: a.user, label: a.label, kind: a.kind, from: d, to: c });
        }
      }
      if (opts.onDecision) {
        const row: DecisionRow = {
          line: a.line, ts: new Date(a.at).toISOString(), user: a.user, ip: a.ip, deviceId: a.deviceId,
          label: a.label, kind: a.kind, decision: d.decision, score: d.score, reasons: d.reasons,
        };
        if (c) row.compare = c;
        if (a.recordedDecision) row.recordedDecision = a.recordedDecision;
        const w = opts.onDecision(row);
        if (isPromise(w)) await w;
      }
    }
    if (opts.onProgress && total % every === 0) {
      const w = opts.onProgress(total);
      if (isPromise(w)) await w;
    }
  };

  for await (const a of opts.attempts) {
    const ready = buffer.push(a);
    if (ready) await step(ready);
  }
  for (let a = buffer.pop(); a; a = buffer.pop()) await step(a);
  if (opts.onProgress) await opts.onProgress(total);

  const elapsedMs = performance.now() - started;
  const rs = opts.readStats;
  const summary: BacktestSummary = {
    input: {
      lines: rs?.lines ?? total,
      records: rs?.records ?? total,
      malformed: rs?.malformed ?? 0,
      malformedSamples: rs?.malformedSamples ?? [],
      outOfOrder,
    },
    attempts: { total, scored: tA.scored, wrongPassword: wrong, unlabelledScored },
    fidelity: fidCompared === 0 ? null : { compared: fidCompared, agree: fidAgree, disagree: fidCompared - fidAgree, samples: fidSamples },
    primary: tA.summary(opts.policy.version),
    elapsedMs: Math.round(elapsedMs),
    perMinute: Math.round((total / Math.max(elapsedMs, 1)) * 60_000),
  };
  if (opts.compare) {
    summary.compare = { ...tB.summary(opts.compare.version), changed, transitions, reasonsGained: gained, reasonsLost: lost, samples };
  }
  return summary;
}
