import type { MiddlewareHandler } from 'hono';

const FRAME_ANCESTORS = /(?:^|;)\s*frame-ancestors\s/i;

/**
 * Stops clickjacking: no page Threshold serves (the "this wasn't me" confirmation, error pages,
 * JSON) may be framed by another site. Sends `X-Frame-Options: DENY` for older browsers and
 * `frame-ancestors 'none'`, added to a route's own (stricter) CSP when it set one.
 */
export function noFraming(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const apply = (h: Headers) => {
      h.set('X-Frame-Options', 'DENY');
      const csp = h.get('Content-Security-Policy');
      if (!csp) h.set('Content-Security-Policy', "frame-ancestors 'none'");
      else if (!FRAME_ANCESTORS.test(csp)) h.set('Content-Security-Policy', `${csp}; frame-ancestors 'none'`);
    };
    try {
      apply(c.res.headers);
    } catch {
      // A response with immutable headers (e.g. passed through from fetch): copy it once.
      c.res = new Response(c.res.body, c.res);
      apply(c.res.headers);
    }
  };
}
