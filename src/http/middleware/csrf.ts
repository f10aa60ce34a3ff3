import type { Context, MiddlewareHandler } from 'hono';
import { AppError } from '../../errors.ts';

/**
 * Cross-site request forgery defence for everything a browser authenticates by cookie (the
 * session cookie, and the device cookie that binds login flows). One rule, for every unsafe
 * method (anything but GET, HEAD, OPTIONS) unless the request carries a bearer token:
 *
 *  1. Where it comes from. An `Origin` in the allowed list passes. Otherwise `Sec-Fetch-Site`
 *     decides when the browser sent it: `same-origin` and `none` (typed, bookmarked) pass;
 *     `same-site` (a sibling subdomain, which `SameSite=Lax` does not stop) and `cross-site` are
 *     refused. Without `Sec-Fetch-Site`, an `Origin` not in the list (or `null`) is refused.
 *     A request with neither header is not from a browser that can be tricked (every supported
 *     browser sends at least one on an unsafe request): curl and native clients pass.
 *  2. What it carries: no `Content-Type`, or JSON. A plain HTML form cannot send JSON, so even a
 *     browser too old to send `Origin` cannot reach a handler that takes no body.
 *
 * Bearer calls are exempt: a browser cannot attach `Authorization: Bearer` to a cross-origin
 * request without a CORS preflight that Threshold never grants, and `authenticate()` ignores the
 * cookie whenever an `Authorization` header is present. Other schemes (`Basic`, which a browser
 * may attach on its own) are checked like cookies.
 */
export interface CsrfOptions {
  /** Origins whose pages may change state: `scheme://host[:port]`, exactly as browsers send them. */
  allowedOrigins: readonly string[];
  /** Paths never checked: not authenticated by a cookie at all. Anchored patterns. */
  skip?: readonly RegExp[];
  /** Paths that take HTML form posts from Threshold's own pages: origin-checked, any content type. */
  forms?: readonly RegExp[];
  /** Told about each refusal (logging); the path with its opaque ids (flow ids, report tokens) elided. */
  onRefused?: (info: { reason: CsrfReason; method: string; path: string; origin: string | null; site: string | null }) => void;
}

export type CsrfReason = 'SEC_FETCH_SITE' | 'ORIGIN' | 'CONTENT_TYPE';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const BEARER = /^Bearer /;
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
/** Path segments that may be secrets (a report token) or probes (a flow id) stay out of logs. */
const elide = (path: string) => path.replace(/\/[A-Za-z0-9_-]{16,}(?=\/|$)/g, '/…').slice(0, 200);

/** Throws at creation on an origin a browser would never send (a path, a trailing slash, a bad scheme). */
function validOrigin(o: string): string {
  let u: URL;
  try {
    u = new URL(o);
  } catch {
    throw new Error(`csrf: allowed origin ${JSON.stringify(o)} is not a URL`);
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.origin !== o)
    throw new Error(`csrf: allowed origin ${JSON.stringify(o)} must be exactly scheme://host[:port], e.g. ${JSON.stringify(u.origin)}`);
  return o;
}

function anchored(kind: string, r: RegExp): RegExp {
  if (!r.source.startsWith('^') || !r.source.endsWith('$') || r.flags.includes('g') || r.flags.includes('y'))
    throw new Error(`csrf: ${kind} pattern ${r} must be anchored (^…$) and without g/y flags`);
  return r;
}

/** Where the request comes from, by the browser's own account; null when it may pass. */
export function judgeSource(site: string | undefined, origin: string | undefined, allowed: ReadonlySet<string>): CsrfReason | null {
  if (origin !== undefined && allowed.has(origin)) return null;
  if (site !== undefined) {
    const v = site.trim().toLowerCase();
    return v === 'same-origin' || v === 'none' ? null : 'SEC_FETCH_SITE';
  }
  if (origin !== undefined) return 'ORIGIN';
  return null;
}

/** Stops cross-site and sibling-subdomain forms (and scripts) from acting with a user's cookies. */
export function csrfProtection(opts: CsrfOptions): MiddlewareHandler {
  if (!opts.allowedOrigins.length) throw new Error('csrf: at least one allowed origin is required');
  const allowed = new Set(opts.allowedOrigins.map(validOrigin));
  const skip = (opts.skip ?? []).map((r) => anchored('skip', r));
  const forms = (opts.forms ?? []).map((r) => anchored('forms', r));

  const refuse = (c: Context, reason: CsrfReason): never => {
    const origin = c.req.header('origin')?.slice(0, 200) ?? null;
    opts.onRefused?.({ reason, method: c.req.method, path: elide(c.req.path), origin, site: c.req.header('sec-fetch-site')?.slice(0, 40) ?? null });
    if (reason === 'CONTENT_TYPE') throw new AppError('UNSUPPORTED_MEDIA_TYPE', { detail: 'Send application/json, or no body.' });
    throw new AppError('CROSS_SITE_REQUEST');
  };

  return async (c, next) => {
    if (SAFE_METHODS.has(c.req.method)) return next();
    const path = c.req.path;
    if (skip.some((r) => r.test(path))) return next();
    if (BEARER.test(c.req.header('authorization') ?? '')) return next();
    const reason = judgeSource(c.req.header('sec-fetch-site'), c.req.header('origin'), allowed);
    if (reason) refuse(c, reason);
    const type = c.req.header('content-type');
    if (type !== undefined && !JSON_TYPE.test(type) && !forms.some((r) => r.test(path))) refuse(c, 'CONTENT_TYPE');
    return next();
  };
}
