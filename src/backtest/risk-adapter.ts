import { inCidrs, parseCidrs } from '../risk/cidr.ts';
import { haversineKm, type Geo } from '../risk/geo.ts';
import { evaluate, type PolicyDocument } from '../risk/policy.ts';
import { TRAVEL_NOISE_KM, type Signals } from '../risk/signals.ts';
import type { ReplayEngine, ReplayEngineFactory } from './engine.ts';
import type { Attempt } from './jsonl.ts';

export interface AdapterOptions {
  geo: Geo;
  denyCidrs: string;
  maxTravelKmh: number;
  failureWindowSeconds: number;
}

interface UserState {
  devices: Set<string>;
  countries: Set<string>;
  last: { at: number; lat: number; lon: number } | null;
  failures: number[];
}

/**
 * Interim adapter: the current five signals over an in-memory history (the same rules as
 * src/risk/signals.ts's SQL, answered from maps) and the real `evaluate`. Replaced by the
 * engine's own in-memory RiskHistory + scoreAttempt once that lands.
 */
export function createReplayEngineFactory(opts: AdapterOptions): ReplayEngineFactory {
  const deny = parseCidrs(opts.denyCidrs);
  return (policy: PolicyDocument): ReplayEngine => {
    const users = new Map<string, UserState>();
    const ipFailures = new Map<string, number[]>();
    const win = opts.failureWindowSeconds * 1000;
    const user = (id: string): UserState => {
      let u = users.get(id);
      if (!u) users.set(id, (u = { devices: new Set(), countries: new Set(), last: null, failures: [] }));
      return u;
    };
    const recent = (list: number[] | undefined, at: number): number => {
      if (!list) return 0;
      while (list.length > 0 && list[0] < at - win) list.shift();
      return list.length;
    };
    return {
      score(a: Attempt) {
        const u = users.get(a.user);
        const point = opts.geo.lookup(a.ip);
        const hasHistory = u !== undefined && u.countries.size + (u.last ? 1 : 0) + u.devices.size > 0;
        const accountFailures = recent(u?.failures, a.at);
        const ipF = recent(ipFailures.get(a.ip), a.at);
        let speed: number | null = null;
        let km = 0;
        if (u?.last && point) {
          km = haversineKm(u.last, point);
          speed = Math.round((km / Math.max((a.at - u.last.at) / 3_600_000, 1 / 60)) * 10) / 10;
        }
        const located = hasHistory && point !== null;
        const deniedCidr = inCidrs(a.ip, deny);
        const signals: Signals = {
          NEW_DEVICE: a.deviceId === null || !u?.devices.has(a.deviceId),
          NEW_COUNTRY: located && !u!.countries.has(point!.country),
          IMPOSSIBLE_TRAVEL: located && speed !== null && km >= TRAVEL_NOISE_KM && speed > opts.maxTravelKmh,
          SUSPICIOUS_IP: deniedCidr !== null,
          FAILED_ATTEMPTS: accountFailures >= policy.failedAttempts.threshold || ipF >= policy.failedAttempts.threshold,
          details: { hasHistory, accountFailures, ipFailures: ipF, speedKmh: speed, deniedCidr },
        };
        const r = evaluate(signals, policy);
        return { decision: r.decision, score: r.score, reasons: r.reasons };
      },
      record(a, outcome) {
        if (outcome === 'failed') {
          user(a.user).failures.push(a.at);
          let l = ipFailures.get(a.ip);
          if (!l) ipFailures.set(a.ip, (l = []));
          l.push(a.at);
          return;
        }
        if (outcome !== 'succeeded') return;
        const u = user(a.user);
        if (a.deviceId !== null) u.devices.add(a.deviceId);
        const p = opts.geo.lookup(a.ip);
        if (p) {
          u.countries.add(p.country);
          u.last = { at: a.at, lat: p.lat, lon: p.lon };
        }
      },
    };
  };
}

/** The replay engine the live configuration implies (CLI, jobs and tests share it). */
export function replayFactoryFor(
  geo: Geo,
  config: { RISK_DENY_CIDRS?: string; RISK_MAX_TRAVEL_KMH?: number; RISK_FAILURE_WINDOW_SECONDS?: number },
): ReplayEngineFactory {
  return createReplayEngineFactory({
    geo,
    denyCidrs: config.RISK_DENY_CIDRS ?? '',
    maxTravelKmh: config.RISK_MAX_TRAVEL_KMH ?? 900,
    failureWindowSeconds: config.RISK_FAILURE_WINDOW_SECONDS ?? 3600,
  });
}
