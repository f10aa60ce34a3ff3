import type { Queryable } from '../db/db.ts';
import { haversineKm, type Geo, type GeoPoint } from './geo.ts';
import type { HistoryFacts, HistoryQuery } from './history.ts';
import { createPgRiskHistory } from './history-pg.ts';
import { createNetworks, type NetworkView } from './network.ts';
import { userAgentFamily } from './user-agent.ts';

/**
 * What was observed about one login attempt; stored with the decision, so JSON only. Risk
 * signals push towards a step-up; trust signals (KNOWN_*, ALLOWED_NETWORK) say why an attempt
 * looks like its owner. Snapshots stored by older builds lack the newer keys: read them as false.
 */
export interface Signals {
  NEW_DEVICE: boolean;
  NEW_COUNTRY: boolean;
  IMPOSSIBLE_TRAVEL: boolean;
  SUSPICIOUS_IP: boolean;
  FAILED_ATTEMPTS: boolean;
  NEW_NETWORK?: boolean;
  NEW_DEVICE_NEW_NETWORK?: boolean;
  HOSTING_NETWORK?: boolean;
  ANONYMIZING_NETWORK?: boolean;
  TOR_EXIT?: boolean;
  PASSWORD_SPRAY?: boolean;
  IP_VELOCITY?: boolean;
  SUBNET_VELOCITY?: boolean;
  DEVICE_VELOCITY?: boolean;
  KNOWN_DEVICE?: boolean;
  KNOWN_NETWORK?: boolean;
  ALLOWED_NETWORK?: boolean;
  /**
   * The device presented a live remembered-device token of this account (src/session/remembered-devices.ts):
   * it counts as known. Absent from snapshots of attempts without one (and of older builds).
   */
  REMEMBERED_DEVICE?: boolean;
  /**
   * The engine's inputs for this decision (set by `decide`, src/risk/score.ts), so another policy
   * can be decided on exactly the same observations (shadow mode). Absent from older snapshots.
   */
  observed?: Observed;
  details: {
    hasHistory: boolean;
    accountFailures: number;
    ipFailures: number;
    speedKmh: number | null;
    deniedCidr: string | null;
    distanceKm?: number | null;
    travelDiscounted?: boolean;
    allowedCidr?: string | null;
    asn?: number | null;
    org?: string | null;
    connectionType?: string;
    prefix?: string | null;
    networkKey?: string | null;
    uaFamily?: string | null;
    country?: string | null;
    radiusKm?: number | null;
    ipAccounts?: number;
    subnetAccounts?: number;
    deviceAccounts?: number;
    ipFailedAccounts?: number;
    subnetFailedAccounts?: number;
    failureWindowSeconds?: number;
    velocityWindowSeconds?: number;
    /** A remembered device was presented but not counted: the attempt is denied without it. */
    rememberedOverruled?: boolean;
  };
}

/** What `decide` saw besides the attempt's identifiers (which the login event row keeps). */
export interface Observed {
  /** The attempt's time: the history was read strictly before it. */
  at: number;
  network: NetworkView;
  facts: HistoryFacts;
  /** Deployment thresholds in force (not part of a policy document). */
  settings: { maxTravelKmh: number; failureWindowSeconds: number };
}

export interface RiskInput {
  identityId: string | null;
  deviceId: string | null;
  ip: string;
  at: number; // epoch ms; "now" for every rule, so a recorded attempt can be re-scored later
  /** The User-Agent header as received (only its family is kept). */
  userAgent?: string | null;
  /** False for an attempt whose password was wrong (recorded, normally not scored). Default true. */
  passwordCorrect?: boolean;
  /**
   * The device presented a live remembered-device token of this identity. Recorded attempts
   * without it (every back-test line, every older event) score exactly as before.
   */
  rememberedDevice?: boolean;
}

/** Tunables of the signals (thresholds that decide whether a signal fires, not its weight). */
export interface SignalConfig {
  maxTravelKmh: number;
  failureWindowSeconds: number;
  failureThreshold: number;
  velocityWindowSeconds: number;
  /** Other accounts tried from this IP with a device new to them before IP_VELOCITY fires. */
  ipAccounts: number;
  subnetAccounts: number;
  deviceAccounts: number;
  /** Accounts with failed new-device attempts from one IP (or 2× from its prefix) for PASSWORD_SPRAY. */
  sprayAccounts: number;
}

export const DEFAULT_SIGNAL_CONFIG: SignalConfig = Object.freeze({
  maxTravelKmh: 900,
  failureWindowSeconds: 3600,
  failureThreshold: 3,
  velocityWindowSeconds: 24 * 3600,
  ipAccounts: 2,
  subnetAccounts: 4,
  deviceAccounts: 1,
  sprayAccounts: 3,
});

/** Under this distance (beyond both accuracy radii) two GeoIP fixes are indistinguishable. */
export const TRAVEL_NOISE_KM = 100;
/** Accuracy assumed for a fixed-line fix when the database gives none (DB-IP Lite). */
export const FIXED_RADIUS_KM = 50;
/** Cellular gateways geolocate hundreds of km from the phone (one PoP serves a region). */
export const MOBILE_RADIUS_KM = 500;
/** Shortest elapsed time used for a speed, so two logins a second apart are not "infinitely fast". */
const MIN_ELAPSED_HOURS = 1 / 60;

const radius = (r: number | null | undefined, type: string | null | undefined): number =>
  type === 'mobile' ? Math.max(r ?? 0, MOBILE_RADIUS_KM) : (r ?? FIXED_RADIUS_KM);

/** The history question for one attempt. */
export function historyQuery(input: RiskInput, net: NetworkView, cfg: SignalConfig): HistoryQuery {
  return {
    identityId: input.identityId,
    deviceId: input.deviceId,
    ip: input.ip,
    prefix: net.prefix,
    networkKey: net.key,
    asn: net.asn,
    uaFamily: userAgentFamily(input.userAgent),
    at: input.at,
    failureWindowSeconds: cfg.failureWindowSeconds,
    velocityWindowSeconds: cfg.velocityWindowSeconds,
  };
}

/**
 * Signals from (attempt, history facts, network view, config). Pure and cheap: the same inputs
 * give the same snapshot live and in a back-test.
 */
export function computeSignals(input: RiskInput, h: HistoryFacts, net: NetworkView, cfg: SignalConfig): Signals {
  const point = net.geo;
  const remembered = input.rememberedDevice === true && input.identityId !== null;
  // A remembered device was proven with a second factor on this device: it is known.
  const newDevice = input.identityId === null || (!h.deviceKnown && !remembered);
  const allowed = net.allowedCidr !== null;
  // A network the user already succeeded from is familiar whatever its kind (corporate VPN, Private Relay).
  const familiarNet = h.networkKnown || allowed;
  const located = h.hasHistory && point !== null;

  // Impossible travel, measured beyond the accuracy of both fixes; a known device coming in
  // through a mobile gateway or an egress this account already uses is the owner's phone.
  let distanceKm: number | null = null;
  let speedKmh: number | null = null;
  let travel = false;
  let travelDiscounted = false;
  const last = h.lastLocated;
  if (located && last) {
    distanceKm = Math.round(haversineKm({ lat: last.lat, lon: last.lon }, point));
    const slack = radius(last.radiusKm, last.networkType) + radius(point.radiusKm, net.type);
    const beyond = Math.max(0, distanceKm - slack);
    const hours = Math.max((input.at - last.at) / 3_600_000, MIN_ELAPSED_HOURS);
    speedKmh = Math.round((beyond / hours) * 10) / 10;
    const fast = beyond >= TRAVEL_NOISE_KM && speedKmh > cfg.maxTravelKmh;
    // A network this account already succeeded from places it there already (the fix is the
    // network's, not the person's); a known device through a mobile gateway or a known AS is the owner's phone.
    travelDiscounted = fast && (familiarNet || (!newDevice && (net.type === 'mobile' || h.asnKnown)));
    travel = fast && !travelDiscounted;
  }

  // Velocity counts other accounts where the device was new; only a new device here is suspect.
  const mobile = net.type === 'mobile';
  const ipVel = newDevice && h.ipAccounts >= cfg.ipAccounts * (mobile ? 3 : 1) && !allowed;
  const subnetVel = newDevice && !mobile && !allowed && h.subnetAccounts >= cfg.subnetAccounts;
  const deviceVel = newDevice && input.deviceId !== null && h.deviceAccounts >= cfg.deviceAccounts;
  const spray = newDevice && !allowed && (h.ipFailedAccounts >= cfg.sprayAccounts || (!mobile && h.subnetFailedAccounts >= 2 * cfg.sprayAccounts));

  return {
    NEW_DEVICE: newDevice,
    NEW_COUNTRY: located && !h.countries.includes(point.country),
    IMPOSSIBLE_TRAVEL: travel,
    SUSPICIOUS_IP: net.deniedCidr !== null,
    FAILED_ATTEMPTS: h.accountFailures >= cfg.failureThreshold || h.ipFailures >= cfg.failureThreshold,
    NEW_NETWORK: h.hasHistory && !familiarNet,
    NEW_DEVICE_NEW_NETWORK: h.hasHistory && newDevice && !familiarNet,
    HOSTING_NETWORK: net.type === 'hosting' && !familiarNet,
    ANONYMIZING_NETWORK: (net.type === 'vpn' || net.type === 'proxy') && !familiarNet,
    TOR_EXIT: net.tor,
    PASSWORD_SPRAY: spray,
    IP_VELOCITY: ipVel,
    SUBNET_VELOCITY: subnetVel,
    DEVICE_VELOCITY: deviceVel,
    KNOWN_DEVICE: !newDevice,
    KNOWN_NETWORK: h.networkKnown,
    ALLOWED_NETWORK: allowed,
    // Only present when true, so snapshots of attempts without a remembered device stay as they were.
    ...(remembered ? { REMEMBERED_DEVICE: true } : {}),
    details: {
      hasHistory: h.hasHistory,
      accountFailures: h.accountFailures,
      ipFailures: h.ipFailures,
      speedKmh: h.hasHistory ? speedKmh : null,
      deniedCidr: net.deniedCidr,
      distanceKm,
      travelDiscounted,
      allowedCidr: net.allowedCidr,
      asn: net.asn,
      org: net.org,
      connectionType: net.type,
      prefix: net.prefix,
      networkKey: net.key,
      uaFamily: userAgentFamily(input.userAgent),
      country: point?.country ?? null,
      radiusKm: point?.radiusKm ?? null,
      ipAccounts: h.ipAccounts,
      subnetAccounts: h.subnetAccounts,
      deviceAccounts: h.deviceAccounts,
      ipFailedAccounts: h.ipFailedAccounts,
      subnetFailedAccounts: h.subnetFailedAccounts,
      failureWindowSeconds: cfg.failureWindowSeconds,
      velocityWindowSeconds: cfg.velocityWindowSeconds,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Compatibility: the pre-port entry point, now history port + network view + computeSignals.

export interface SignalDeps {
  db: Queryable;
  geo: Geo;
  denyCidrs: string[];
  maxTravelKmh: number;
  failureWindowSeconds: number;
  failureThreshold: number;
}

/**
 * Observe one login attempt against login_events in Postgres. Reads only rows before
 * `input.at`. Kept for callers of the old API; new code uses scoreAttempt (src/risk/score.ts).
 */
export async function collectSignals(deps: SignalDeps, input: RiskInput): Promise<{ signals: Signals; point: GeoPoint | null }> {
  const networks = createNetworks({ geo: deps.geo, denyCidrs: deps.denyCidrs.join(',') });
  const cfg: SignalConfig = {
    ...DEFAULT_SIGNAL_CONFIG,
    maxTravelKmh: deps.maxTravelKmh,
    failureWindowSeconds: deps.failureWindowSeconds,
    failureThreshold: deps.failureThreshold,
  };
  const net = networks.describe(input.ip);
  const facts = await createPgRiskHistory(deps.db).facts(historyQuery(input, net, cfg));
  return { signals: computeSignals(input, facts, net, cfg), point: net.geo };
}
