import { networkPrefix } from './network.ts';
import { userAgentFamily } from './user-agent.ts';

/** The risk history columns of one login_events row (db/migrations/0020), in this order. */
export const RISK_EVENT_COLUMNS = ['net_prefix', 'net_key', 'asn', 'net_type', 'ua_family', 'geo_radius_km'] as const;

/**
 * SQL for login_events.device_new of a row about to be inserted for identity `id` on device
 * `dev` (placeholders): an unknown identifier, or an account that already succeeded, never on
 * this device. The same rule as MemoryRiskHistory.isDeviceNew.
 */
export const deviceNewSql = (id: string, dev: string): string =>
  `(${id}::uuid IS NULL OR (EXISTS (SELECT 1 FROM login_events k WHERE k.identity_id = ${id}::uuid AND k.outcome = 'succeeded')` +
  ` AND (${dev}::text IS NULL OR NOT EXISTS (SELECT 1 FROM login_events k WHERE k.identity_id = ${id}::uuid AND k.device_id = ${dev}::text AND k.outcome = 'succeeded'))))`;

/**
 * Values for RISK_EVENT_COLUMNS. A scored attempt carries its network view in the signal
 * snapshot; a failed password (never scored) gets its prefix from the address alone, which is
 * all the cross-account counts need. `device_new` is computed by the INSERT itself.
 */
export function riskEventColumns(ip: string | null, signals: unknown, userAgent: string | null | undefined): unknown[] {
  const d = (signals as { details?: Record<string, unknown> } | null | undefined)?.details ?? {};
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  const numOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const prefix = str(d.prefix) ?? (ip ? (networkPrefix(ip)?.prefix ?? null) : null);
  return [
    prefix,
    str(d.networkKey) ?? prefix,
    numOrNull(d.asn),
    str(d.connectionType),
    str(d.uaFamily) ?? userAgentFamily(userAgent),
    numOrNull(d.radiusKm),
  ];
}
