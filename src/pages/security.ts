import { createHmac, timingSafeEqual } from 'node:crypto';
import { AppError } from '../errors.ts';

/**
 * The pages' Content-Security-Policy: scripts, styles and requests from Threshold's own origin
 * only, no inline script or style, images from here or data: URIs (the TOTP QR code), forms post
 * only here, no framing, no <base>. Stops injected markup from running script or leaking data.
 */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Page CSRF tokens are HMACs of (purpose, binding) under a key derived from the master key. */
export interface CsrfTokens {
  /** A token for forms bound to `binding` (the device cookie on sign-in pages, the session id on the account page). */
  issue(purpose: 'login' | 'account', binding: string): string;
  /** Stops a form posted by another site (or one without the page's token) from acting with the user's cookies. */
  check(purpose: 'login' | 'account', binding: string | null, presented: unknown): void;
}

export function csrfTokens(key: Buffer): CsrfTokens {
  const mac = (purpose: string, binding: string) => createHmac('sha256', key).update(`page-csrf\0${purpose}\0${binding}`).digest();
  return {
    issue: (purpose, binding) => mac(purpose, binding).toString('base64url'),
    check(purpose, binding, presented) {
      if (!binding || typeof presented !== 'string' || presented.length !== 43) throw new AppError('CROSS_SITE_REQUEST', { detail: 'The form is out of date; reload the page and try again.' });
      const want = mac(purpose, binding);
      const got = Buffer.from(presented, 'base64url');
      if (got.length !== want.length || !timingSafeEqual(got, want)) throw new AppError('CROSS_SITE_REQUEST', { detail: 'The form is out of date; reload the page and try again.' });
    },
  };
}

/** Exactly `scheme://host[:port]` (what `URL.origin` gives), http or https; throws at boot otherwise. */
function exactOrigin(o: string): string {
  let u: URL;
  try {
    u = new URL(o);
  } catch {
    throw new Error(`RETURN_TO_ORIGINS: ${JSON.stringify(o)} is not a URL`);
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.origin !== o) throw new Error(`RETURN_TO_ORIGINS: ${JSON.stringify(o)} must be exactly scheme://host[:port]`);
  return o;
}

/** Characters never found in a return address we accept: controls, spaces, backslashes. */
const UNSAFE = /[\u0000-\u0020\u007f-\u009f\\]/;

/**
 * The `return_to` rule: a path on Threshold's own origin, or an absolute http(s) URL on one of the
 * registered origins; anything else is refused (null). Stops open redirects: `//evil`, `/\evil`,
 * `javascript:`, credentials in the URL, and their percent-encoded disguises.
 */
export function returnToPolicy(publicUrl: string, origins: readonly string[]) {
  const own = new URL(publicUrl).origin;
  const allowed = new Set([own, ...origins.map(exactOrigin)]);
  return (raw: string | undefined | null): string | null => {
    if (raw === undefined || raw === null || raw === '') return null;
    if (raw.length > 2048 || UNSAFE.test(raw)) return null;
    // A disguise that a later decoding (by a proxy, an app, a browser) would turn into another host.
    let decoded = raw;
    for (let i = 0; i < 3; i++) {
      try {
        const next = decodeURIComponent(decoded);
        if (next === decoded) break;
        decoded = next;
      } catch {
        return null;
      }
      if (UNSAFE.test(decoded) || /^\/\/|^\/\\/.test(decoded) || /^[a-z][a-z0-9+.-]*:/i.test(decoded) !== /^[a-z][a-z0-9+.-]*:/i.test(raw)) return null;
    }
    if (raw.startsWith('/')) {
      if (raw.startsWith('//')) return null;
      const u = new URL(raw, own);
      return u.origin === own ? u.pathname + u.search + u.hash : null;
    }
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      return null;
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return null;
    if (u.username || u.password || !allowed.has(u.origin)) return null;
    return u.href;
  };
}
export type ReturnToPolicy = ReturnType<typeof returnToPolicy>;
