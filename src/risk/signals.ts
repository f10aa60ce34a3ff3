import type { Queryable } from '../db/db.ts';
import { inCidrs, parseCidrs } from './cidr.ts';
import { haversineKm } from './geo.ts';
import type { Geo, GeoPoint } from './geo.ts';

/** What was observed about one login attempt; stored with the decision, so JSON only. */
export interface Signals {
  NEW_DEVICE: boolean;
  NEW_COUNTRY: boolean;
  IMPOSSIBLE_TRAVEL: boolean;
  SUSPICIOUS_IP: boolean;
  FAILED_ATTEMPTS: boolean;
  details: {
    hasHistory: boolean;
    accountFailures: number;
    ipFailures: number;
    speedKmh: number | null;
    deniedCidr: string | null;
  };
}

export interface RiskInput {
  identityId: string | null;
  deviceId: string | null;
  ip: string;
  at: number; // epoch ms; "now" for every rule, so a recorded attempt can be re-scored later
}

export interface SignalDeps {
  db: Queryable;
  geo: Geo;
  denyCidrs: string[];
  maxTravelKmh: number;
  failureWindowSeconds: number;
  failureThreshold: number;
}

/** Under this distance two GeoIP fixes are indistinguishable (city centroids, ISP hubs). */
export const TRAVEL_NOISE_KM = 100;
/** Shortest elapsed time used for a speed, so two logins a second apart are not "infinitely fast". */
const MIN_ELAPSED_HOURS = 1 / 60;

const ts = (ms: number): string => new Date(ms).toISOString();
const toMs = (v: unknown): number => (v instanceof Date ? v.getTime() : new Date(String(v)).getTime());

/**
 * Stops a stolen password being used from a device the account has never signed in on.
 * A null deviceId is always new.
 */
async function isNewDevice(db: Queryable, identityId: string, deviceId: string | null, at: number): Promise<boolean> {
  if (deviceId === null) return true;
  const { rows } = await db.query(
    `SELECT 1 FROM login_events
      WHERE identity_id = $1 AND device_id = $2 AND outcome = 'succeeded' AND created_at < $3
      LIMIT 1`,
    [identityId, deviceId, ts(at)],
  );
  return rows.length === 0;
}

/** Countries of the user's successful logins before `at`; empty rows mean no history at all. */
async function loginHistory(db: Queryable, identityId: string, at: number): Promise<{ hasHistory: boolean; countries: Set<string> }> {
  const { rows } = await db.query<{ country: string | null }>(
    `SELECT DISTINCT country FROM login_events
      WHERE identity_id = $1 AND outcome = 'succeeded' AND created_at < $2`,
    [identityId, ts(at)],
  );
  const countries = new Set<string>();
  for (const r of rows) if (r.country) countries.add(r.country);
  return { hasHistory: rows.length > 0, countries };
}

/** Stops a session thief on another continent: speed from the last located successful login. */
async function travelSpeedKmh(db: Queryable, identityId: string, point: GeoPoint, at: number): Promise<{ speed: number; km: number } | null> {
  const { rows } = await db.query<{ latitude: number; longitude: number; created_at: unknown }>(
    `SELECT latitude, longitude, created_at FROM login_events
      WHERE identity_id = $1 AND outcome = 'succeeded' AND created_at < $2
        AND latitude IS NOT NULL AND longitude IS NOT NULL
      ORDER BY created_at DESC LIMIT 1`,
    [identityId, ts(at)],
  );
  const last = rows[0];
  if (!last) return null;
  const km = haversineKm({ lat: Number(last.latitude), lon: Number(last.longitude) }, point);
  const hours = Math.max((at - toMs(last.created_at)) / 3_600_000, MIN_ELAPSED_HOURS);
  return { speed: Math.round((km / hours) * 10) / 10, km };
}

/**
 * Stops password guessing: failures in the window, for the account and for the source IP.
 * Failures an unlock forgave before `at` no longer count (users.unlock).
 */
async function countFailures(
  db: Queryable,
  column: 'identity_id' | 'ip',
  value: string,
  at: number,
  windowSeconds: number,
): Promise<number> {
  const { rows } = await db.query<{ n: string | number }>(
    `SELECT count(*) AS n FROM login_events
      WHERE ${column} = $1 AND outcome = 'failed' AND created_at >= $2 AND created_at < $3
        AND (forgiven_at IS NULL OR forgiven_at > $3)`,
    [value, ts(at - windowSeconds * 1000), ts(at)],
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * Observe one login attempt. Reads only login_events before `input.at`, so re-running it on a
 * recorded attempt (back-testing) sees what the live decision saw. A user with no successful
 * login yet gets no location signals: there is nothing to compare against.
 */
export async function collectSignals(deps: SignalDeps, input: RiskInput): Promise<{ signals: Signals; point: GeoPoint | null }> {
  const { db, failureWindowSeconds: win } = deps;
  const { identityId: id, at } = input;
  const point = deps.geo.lookup(input.ip);
  const deniedCidr = inCidrs(input.ip, parseCidrs(deps.denyCidrs.join(',')));

  const [ipFailures, newDevice, history, accountFailures, travel] = await Promise.all([
    countFailures(db, 'ip', input.ip, at, win),
    id === null ? true : isNewDevice(db, id, input.deviceId, at),
    id === null ? { hasHistory: false, countries: new Set<string>() } : loginHistory(db, id, at),
    id === null ? 0 : countFailures(db, 'identity_id', id, at, win),
    id === null || point === null ? null : travelSpeedKmh(db, id, point, at),
  ]);

  const located = history.hasHistory && point !== null;
  const signals: Signals = {
    NEW_DEVICE: newDevice,
    NEW_COUNTRY: located && !history.countries.has(point.country),
    IMPOSSIBLE_TRAVEL:
      located && travel !== null && travel.km >= TRAVEL_NOISE_KM && travel.speed > deps.maxTravelKmh,
    SUSPICIOUS_IP: deniedCidr !== null,
    FAILED_ATTEMPTS: accountFailures >= deps.failureThreshold || ipFailures >= deps.failureThreshold,
    details: {
      hasHistory: history.hasHistory,
      accountFailures,
      ipFailures,
      speedKmh: history.hasHistory ? (travel?.speed ?? null) : null,
      deniedCidr,
    },
  };
  return { signals, point };
}
