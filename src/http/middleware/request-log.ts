import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { Logger } from '../../logger.ts';

/**
 * One debug line per request, sanitised by construction: the route pattern (`/auth/report/:token`,
 * never the path, whose segments can be tokens or flow ids), no query, headers, cookies, body or
 * client address. Costs nothing unless LOG_LEVEL is debug or trace.
 */
export function requestLog(logger: Pick<Logger, 'debug' | 'isLevelEnabled'>): MiddlewareHandler<{ Variables: { requestId: string } }> {
  return async (c, next) => {
    if (!logger.isLevelEnabled('debug')) return next();
    const started = performance.now();
    await next();
    const route = matchedRoutes(c)[c.req.routeIndex]?.path ?? '(none)';
    logger.debug(
      { requestId: c.get('requestId'), method: c.req.method, route, status: c.res.status, ms: Math.round(performance.now() - started) },
      'request',
    );
  };
}
