import type { Context, MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { inCidrs, parseCidrs, type Cidr } from '../../risk/cidr.ts';
import { randomToken } from '../../crypto/seal.ts';

export interface ClientInfo {
  ip: string;
  deviceId: string | null;
}

const stripMapped = (ip: string) => (ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip);

/** The peer socket's address (node server), or what a test harness put in env. */
export function socketAddress(c: Context): string {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return stripMapped(env?.incoming?.socket?.remoteAddress ?? '0.0.0.0');
}

/**
 * Client IP: the socket address; X-Forwarded-For only when the socket is a trusted proxy,
 * walking right to left past trusted hops. Stops IP spoofing by untrusted peers.
 */
export function clientIp(c: Context, trusted: readonly Cidr[]): string {
  let ip = socketAddress(c);
  if (!trusted.length || !inCidrs(ip, trusted)) return ip;
  const xff = c.req.header('x-forwarded-for');
  if (!xff) return ip;
  const hops = xff.split(',').map((s) => stripMapped(s.trim())).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    ip = hops[i];
    if (!inCidrs(ip, trusted)) return ip;
  }
  return ip;
}

const DEVICE_RE = /^[A-Za-z0-9_-]{16,128}$/;

export function deviceCookieName(secure: boolean) {
  return secure ? '__Host-threshold_device' : 'threshold_device';
}

/** Reads (or, with `issue`, sets) the long-lived device cookie; API clients may send X-Device-Id. */
export function deviceId(c: Context, secure: boolean, issue: boolean): string | null {
  const header = c.req.header('x-device-id');
  if (header && DEVICE_RE.test(header)) return header;
  const name = deviceCookieName(secure);
  const existing = getCookie(c, name);
  if (existing && DEVICE_RE.test(existing)) return existing;
  if (!issue) return null;
  const id = randomToken(24);
  setCookie(c, name, id, { httpOnly: true, secure, sameSite: 'Lax', path: '/', maxAge: 400 * 24 * 3600 });
  return id;
}

export function clientContext(opts: { trustedProxies: string; secureCookies: boolean }): MiddlewareHandler {
  const trusted = parseCidrs(opts.trustedProxies);
  return async (c, next) => {
    c.set('clientIp' as never, clientIp(c, trusted) as never);
    await next();
  };
}
