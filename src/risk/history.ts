import type { ConnectionType } from './network.ts';

/**
 * The history port: for one attempt, the facts about the past that the signals need. Two
 * implementations answer it the same way — Postgres (live, src/risk/history-pg.ts: one indexed
 * query on login_events) and memory (back-tests, below: fed with `record` in time order). Both
 * see only what happened strictly before `at`, so a replay sees what the live decision saw.
 */
export interface HistoryQuery {
  identityId: string | null;
  deviceId: string | null;
  ip: string;
  /** /24 or /48 of the address (networkPrefix). */
  prefix: string | null;
  /** The network unit for novelty: prefix, or "AS<n>" for mobile carriers. */
  networkKey: string | null;
  asn: number | null;
  uaFamily: string | null;
  at: number;
  failureWindowSeconds: number;
  velocityWindowSeconds: number;
}

export interface LocatedLogin {
  at: number;
  lat: number;
  lon: number;
  radiusKm: number | null;
  networkType: string | null;
}

export interface HistoryFacts {
  /** The account has at least one successful login. */
  hasHistory: boolean;
  /** This device id completed a login to this account. */
  deviceKnown: boolean;
  /** The account succeeded from this network key (prefix, or ASN for mobile). */
  networkKnown: boolean;
  /** The account succeeded from this AS (any prefix). */
  asnKnown: boolean;
  /** The account succeeded with this user-agent family. */
  uaFamilyKnown: boolean;
  /** Countries of the account's successful logins. */
  countries: string[];
  /** The latest successful login with a location. */
  lastLocated: LocatedLogin | null;
  /** Failed attempts on this account / from this IP in the failure window (any device). */
  accountFailures: number;
  ipFailures: number;
  /**
   * Distinct OTHER accounts attempted (any outcome) in the velocity window from this IP / this
   * prefix / this device id, counting only attempts where the device was new to that account —
   * so an office NAT or a shared workstation, where colleagues use their own known devices,
   * stays at zero. Attempts on unknown identifiers count as one account together (IP and prefix
   * only; a device's count is of real accounts).
   */
  ipAccounts: number;
  subnetAccounts: number;
  deviceAccounts: number;
  /** Distinct accounts with a failed new-device attempt from this IP / prefix (password spraying). */
  ipFailedAccounts: number;
  subnetFailedAccounts: number;
}

export interface RiskHistory {
  facts(q: HistoryQuery): Promise<HistoryFacts> | HistoryFacts;
}

export type RecordedOutcome = 'succeeded' | 'failed' | 'stepped_up' | 'denied' | 'locked';

/** One attempt as the history keeps it (what login_events stores per row). */
export interface RecordedAttempt {
  identityId: string | null;
  deviceId: string | null;
  ip: string;
  at: number;
  outcome: RecordedOutcome;
  prefix: string | null;
  networkKey: string | null;
  asn: number | null;
  networkType: ConnectionType | null;
  uaFamily: string | null;
  country: string | null;
  lat: number | null;
  lon: number | null;
  radiusKm: number | null;
  /**
   * A takeover-shaped attempt for the cross-account counts: an account that already had a
   * successful login, on a device that never completed one there (or an unknown identifier).
   * A brand-new account's first device is not counted, so a whole office signing up through one
   * gateway does not look like stuffing.
   */
  deviceNew: boolean;
}

// ---------------------------------------------------------------------------------------------
// In-memory history

interface UserState {
  successes: number;
  devices: Set<string>;
  networks: Set<string>;
  asns: Set<number>;
  uas: Set<string>;
  countries: Set<string>;
  lastLocated: LocatedLogin | null;
  failures: TimeQueue;
}

/** Timestamps in arrival order; old ones dropped from the front (amortised O(1)). */
class TimeQueue {
  private t: number[] = [];
  private head = 0;
  push(at: number): void {
    this.t.push(at);
  }
  countSince(from: number): number {
    while (this.head < this.t.length && this.t[this.head] < from) this.head++;
    if (this.head > 1024 && this.head * 2 > this.t.length) {
      this.t = this.t.slice(this.head);
      this.head = 0;
    }
    return this.t.length - this.head;
  }
}

/** Per key (an IP, a prefix, a device id): new-device attempts in the velocity window, by account. */
class AccountWindow {
  private at: number[] = [];
  private acct: string[] = [];
  private failed: boolean[] = [];
  private head = 0;
  readonly tried = new Map<string, number>();
  readonly failedBy = new Map<string, number>();

  add(at: number, account: string, failed: boolean): void {
    this.at.push(at);
    this.acct.push(account);
    this.failed.push(failed);
    this.tried.set(account, (this.tried.get(account) ?? 0) + 1);
    if (failed) this.failedBy.set(account, (this.failedBy.get(account) ?? 0) + 1);
  }

  evict(from: number): void {
    while (this.head < this.at.length && this.at[this.head] < from) {
      const a = this.acct[this.head];
      dec(this.tried, a);
      if (this.failed[this.head]) dec(this.failedBy, a);
      this.head++;
    }
    if (this.head > 256 && this.head * 2 > this.at.length) {
      this.at = this.at.slice(this.head);
      this.acct = this.acct.slice(this.head);
      this.failed = this.failed.slice(this.head);
      this.head = 0;
    }
  }

  get empty(): boolean {
    return this.head >= this.at.length;
  }
}

function dec(m: Map<string, number>, k: string): void {
  const v = (m.get(k) ?? 0) - 1;
  if (v <= 0) m.delete(k);
  else m.set(k, v);
}

const others = (m: Map<string, number> | undefined, self: string | null): number =>
  m ? m.size - (self !== null && m.has(self) ? 1 : 0) : 0;

/**
 * History in memory for back-tests: `record` each attempt after scoring it, in time order.
 * Every query and record is O(1) amortised (hash lookups; windows drop old entries from the
 * front), and windows are bounded by time, so millions of attempts replay in seconds. Queries
 * must not go back in time (`at` non-decreasing), as in a replay.
 */
export class MemoryRiskHistory implements RiskHistory {
  private users = new Map<string, UserState>();
  private ipFail = new Map<string, TimeQueue>();
  private byIp = new Map<string, AccountWindow>();
  private bySubnet = new Map<string, AccountWindow>();
  private byDevice = new Map<string, AccountWindow>();
  private sweepAt = 0;
  private maxWindowMs = 0;

  /** Number of recorded attempts (for reports). */
  recorded = 0;

  private user(id: string): UserState {
    let u = this.users.get(id);
    if (!u) {
      u = { successes: 0, devices: new Set(), networks: new Set(), asns: new Set(), uas: new Set(), countries: new Set(), lastLocated: null, failures: new TimeQueue() };
      this.users.set(id, u);
    }
    return u;
  }

  /** RecordedAttempt.deviceNew for an attempt happening now (same rule as the Postgres INSERT). */
  isDeviceNew(identityId: string | null, deviceId: string | null): boolean {
    if (identityId === null) return true;
    const u = this.users.get(identityId);
    if (!u || u.successes === 0) return false;
    return deviceId === null || !u.devices.has(deviceId);
  }

  facts(q: HistoryQuery): HistoryFacts {
    const u = q.identityId === null ? undefined : this.users.get(q.identityId);
    const vFrom = q.at - q.velocityWindowSeconds * 1000;
    const fFrom = q.at - q.failureWindowSeconds * 1000;
    this.maxWindowMs = Math.max(this.maxWindowMs, q.velocityWindowSeconds * 1000, q.failureWindowSeconds * 1000);
    const win = (m: Map<string, AccountWindow>, key: string | null): AccountWindow | undefined => {
      if (key === null) return undefined;
      const w = m.get(key);
      w?.evict(vFrom);
      return w;
    };
    const ipW = win(this.byIp, q.ip);
    const subW = win(this.bySubnet, q.prefix);
    const devW = win(this.byDevice, q.deviceId);
    return {
      hasHistory: (u?.successes ?? 0) > 0,
      deviceKnown: q.deviceId !== null && (u?.devices.has(q.deviceId) ?? false),
      networkKnown: q.networkKey !== null && (u?.networks.has(q.networkKey) ?? false),
      asnKnown: q.asn !== null && (u?.asns.has(q.asn) ?? false),
      uaFamilyKnown: q.uaFamily !== null && (u?.uas.has(q.uaFamily) ?? false),
      countries: u ? [...u.countries] : [],
      lastLocated: u?.lastLocated ?? null,
      accountFailures: u ? u.failures.countSince(fFrom) : 0,
      ipFailures: this.ipFail.get(q.ip)?.countSince(fFrom) ?? 0,
      ipAccounts: others(ipW?.tried, q.identityId),
      subnetAccounts: others(subW?.tried, q.identityId),
      deviceAccounts: others(devW?.tried, q.identityId),
      ipFailedAccounts: others(ipW?.failedBy, null),
      subnetFailedAccounts: others(subW?.failedBy, null),
    };
  }

  record(a: RecordedAttempt): void {
    this.recorded++;
    const failed = a.outcome === 'failed';
    if (a.identityId !== null) {
      const u = this.user(a.identityId);
      if (failed) {
        u.failures.push(a.at);
        // Trim as we go: an account under attack may never reach scoring (no correct password).
        if (this.maxWindowMs > 0) u.failures.countSince(a.at - this.maxWindowMs);
      }
      if (a.outcome === 'succeeded') {
        u.successes++;
        if (a.deviceId !== null) u.devices.add(a.deviceId);
        if (a.networkKey !== null) u.networks.add(a.networkKey);
        if (a.asn !== null) u.asns.add(a.asn);
        if (a.uaFamily !== null) u.uas.add(a.uaFamily);
        if (a.country !== null) u.countries.add(a.country);
        if (a.lat !== null && a.lon !== null) {
          u.lastLocated = { at: a.at, lat: a.lat, lon: a.lon, radiusKm: a.radiusKm, networkType: a.networkType };
        }
      }
    }
    if (failed) {
      let q = this.ipFail.get(a.ip);
      if (!q) this.ipFail.set(a.ip, (q = new TimeQueue()));
      q.push(a.at);
    }
    if (a.deviceNew) {
      // Unknown identifiers (never stored: only that one was unknown) count as ONE account
      // together: a person mistyping their own email must not look like a list being worked.
      const acct = a.identityId ?? '?';
      const add = (m: Map<string, AccountWindow>, key: string | null) => {
        if (key === null) return;
        let w = m.get(key);
        if (!w) m.set(key, (w = new AccountWindow()));
        w.add(a.at, acct, failed);
      };
      add(this.byIp, a.ip);
      add(this.bySubnet, a.prefix);
      if (a.identityId !== null) add(this.byDevice, a.deviceId);
    }
    this.sweep(a.at);
  }

  /** Now and then drop windows that went quiet, so memory follows active keys, not all keys ever seen. */
  private sweep(now: number): void {
    if (this.maxWindowMs === 0 || now - this.sweepAt < this.maxWindowMs) return;
    this.sweepAt = now;
    const from = now - this.maxWindowMs;
    for (const m of [this.byIp, this.bySubnet, this.byDevice]) {
      for (const [k, w] of m) {
        w.evict(from);
        if (w.empty) m.delete(k);
      }
    }
    for (const [k, q] of this.ipFail) if (q.countSince(from) === 0) this.ipFail.delete(k);
  }
}
