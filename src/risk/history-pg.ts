import type { Queryable } from '../db/db.ts';
import type { HistoryFacts, HistoryQuery, RiskHistory } from './history.ts';

const ts = (ms: number): string => new Date(ms).toISOString();

/**
 * All facts in ONE statement (one round trip): the account's successes come from one
 * index-only scan of login_events_user_success (a covering partial index), device and network
 * probes from their own partial indexes; velocity counts ride the partial
 * device_new indexes on ip / net_prefix / device_id (db/migrations/0020). Only rows strictly
 * before `at` are read, so re-scoring a recorded attempt sees what the live decision saw.
 */
export const HISTORY_SQL = `
WITH mine AS (
  SELECT device_id, net_key, asn, ua_family, country, latitude, longitude, geo_radius_km, net_type, created_at
    FROM login_events
   WHERE identity_id = $1::uuid AND outcome = 'succeeded' AND created_at < $7
)
SELECT
  EXISTS (SELECT 1 FROM mine) AS has_history,
  EXISTS (SELECT 1 FROM login_events WHERE identity_id = $1::uuid AND device_id = $2 AND outcome = 'succeeded' AND created_at < $7) AS device_known,
  EXISTS (SELECT 1 FROM login_events WHERE identity_id = $1::uuid AND net_key = $3 AND outcome = 'succeeded' AND created_at < $7) AS network_known,
  EXISTS (SELECT 1 FROM mine WHERE asn = $4) AS asn_known,
  EXISTS (SELECT 1 FROM mine WHERE ua_family = $5) AS ua_known,
  ARRAY(SELECT DISTINCT country FROM mine WHERE country IS NOT NULL) AS countries,
  (SELECT json_build_object('at', (extract(epoch FROM created_at) * 1000)::bigint, 'lat', latitude, 'lon', longitude,
                            'radiusKm', geo_radius_km, 'networkType', net_type)
     FROM mine WHERE latitude IS NOT NULL AND longitude IS NOT NULL
    ORDER BY created_at DESC LIMIT 1) AS last_located,
  (SELECT count(*) FROM login_events WHERE identity_id = $1::uuid AND outcome = 'failed' AND created_at >= $8 AND created_at < $7
     AND (forgiven_at IS NULL OR forgiven_at > $7)) AS account_failures,
  (SELECT count(*) FROM login_events WHERE ip = $6 AND outcome = 'failed' AND created_at >= $8 AND created_at < $7
     AND (forgiven_at IS NULL OR forgiven_at > $7)) AS ip_failures,
  ipv.accounts AS ip_accounts, ipv.failed AS ip_failed_accounts,
  subv.accounts AS subnet_accounts, subv.failed AS subnet_failed_accounts,
  devv.accounts AS device_accounts
FROM
  (SELECT count(DISTINCT identity_id) FILTER (WHERE identity_id IS DISTINCT FROM $1::uuid) + (bool_or(identity_id IS NULL) IS TRUE)::int AS accounts,
          count(DISTINCT identity_id) FILTER (WHERE outcome = 'failed') + (bool_or(identity_id IS NULL AND outcome = 'failed') IS TRUE)::int AS failed
     FROM login_events WHERE ip = $6 AND device_new AND created_at >= $9 AND created_at < $7) ipv,
  (SELECT count(DISTINCT identity_id) FILTER (WHERE identity_id IS DISTINCT FROM $1::uuid) + (bool_or(identity_id IS NULL) IS TRUE)::int AS accounts,
          count(DISTINCT identity_id) FILTER (WHERE outcome = 'failed') + (bool_or(identity_id IS NULL AND outcome = 'failed') IS TRUE)::int AS failed
     FROM login_events WHERE net_prefix = $10 AND device_new AND created_at >= $9 AND created_at < $7) subv,
  (SELECT count(DISTINCT identity_id) FILTER (WHERE identity_id IS DISTINCT FROM $1::uuid) AS accounts
     FROM login_events WHERE device_id = $2 AND device_new AND created_at >= $9 AND created_at < $7) devv`;

interface Row {
  has_history: boolean;
  device_known: boolean;
  network_known: boolean;
  asn_known: boolean;
  ua_known: boolean;
  countries: string[] | string;
  last_located: { at: number | string; lat: number; lon: number; radiusKm: number | null; networkType: string | null } | string | null;
  account_failures: string | number;
  ip_failures: string | number;
  ip_accounts: string | number;
  ip_failed_accounts: string | number;
  subnet_accounts: string | number;
  subnet_failed_accounts: string | number;
  device_accounts: string | number;
}

const parseArray = (v: string[] | string): string[] =>
  Array.isArray(v) ? v : v === '{}' ? [] : v.slice(1, -1).split(',').map((s) => s.replace(/^"|"$/g, ''));

export function createPgRiskHistory(db: Queryable): RiskHistory {
  return {
    async facts(q: HistoryQuery): Promise<HistoryFacts> {
      const { rows } = await db.query<Row>(HISTORY_SQL, [
        q.identityId,
        q.deviceId,
        q.networkKey,
        q.asn,
        q.uaFamily,
        q.ip,
        ts(q.at),
        ts(q.at - q.failureWindowSeconds * 1000),
        ts(q.at - q.velocityWindowSeconds * 1000),
        q.prefix,
      ]);
      const r = rows[0];
      const raw = typeof r.last_located === 'string' ? JSON.parse(r.last_located) : r.last_located;
      return {
        hasHistory: r.has_history === true,
        deviceKnown: r.device_known === true,
        networkKnown: r.network_known === true,
        asnKnown: r.asn_known === true,
        uaFamilyKnown: r.ua_known === true,
        countries: parseArray(r.countries),
        lastLocated: raw
          ? { at: Number(raw.at), lat: Number(raw.lat), lon: Number(raw.lon), radiusKm: raw.radiusKm == null ? null : Number(raw.radiusKm), networkType: raw.networkType ?? null }
          : null,
        accountFailures: Number(r.account_failures),
        ipFailures: Number(r.ip_failures),
        ipAccounts: Number(r.ip_accounts),
        subnetAccounts: Number(r.subnet_accounts),
        deviceAccounts: Number(r.device_accounts),
        ipFailedAccounts: Number(r.ip_failed_accounts),
        subnetFailedAccounts: Number(r.subnet_failed_accounts),
      };
    },
  };
}
