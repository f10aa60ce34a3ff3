import { createHash, timingSafeEqual } from 'node:crypto';
import { Hono, type MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import { AppError } from '../errors.ts';
import { routeDocs } from '../http/openapi/doc.ts';
import type { Env, Services } from '../http/services.ts';
import { metrics, registry } from './metrics.ts';

export const metricsDocs = routeDocs('/metrics', 'Operations', {
  'GET /': {
    summary: 'Prometheus metrics (text exposition format)',
    description:
      'Needs `Authorization: Bearer <METRICS_TOKEN>`; without METRICS_TOKEN configured the route answers 404 (metrics are off). ' +
      'Queue depth and worker counts are read when scraped.',
    auth: 'none',
    headers: { Authorization: '`Bearer <METRICS_TOKEN>`' },
    responses: { 200: { description: 'Metrics', contentType: 'text/plain; version=0.0.4', schema: { jsonSchema: { type: 'string' } } } },
    errors: ['UNAUTHENTICATED', 'NOT_FOUND'],
  },
});

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * GET /metrics behind a bearer token. Stops anyone who can reach the API port from reading
 * operational data (failure rates, queue depth): without the exact token it is 401, compared in
 * constant time; with no token configured the route does not exist (404), it is never open.
 */
export function metricsRoutes(s: Services) {
  const app = new Hono<Env>();
  const expected = s.config.METRICS_TOKEN ? digest(`Bearer ${s.config.METRICS_TOKEN}`) : null;
  const queues = [...new Set([s.config.RISK_QUEUE, s.config.NOTIFY_QUEUE])];
  app.get('/', async (c) => {
    if (!expected) throw new AppError('NOT_FOUND');
    if (!timingSafeEqual(digest(c.req.header('authorization') ?? ''), expected))
      throw new AppError('UNAUTHENTICATED', { headers: { 'WWW-Authenticate': 'Bearer realm="metrics"' } });
    await Promise.all(
      queues.map(async (q) => {
        // A dependency that does not answer leaves the gauges as they were; the scrape still succeeds.
        const [counts, workers] = await Promise.all([s.jobs.counts?.(q).catch(() => null), s.jobs.workers(q).catch(() => null)]);
        for (const [state, n] of Object.entries(counts ?? {})) metrics.queueDepth.set({ queue: q, state }, n);
        if (workers !== null) metrics.queueWorkers.set({ queue: q }, workers);
      }),
    );
    c.header('Cache-Control', 'no-store');
    return c.body(await registry.metrics(), 200, { 'Content-Type': registry.contentType });
  });
  return app;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** HTTP latency by method, matched route pattern (never the raw path) and status class. */
export function httpMetrics(): MiddlewareHandler<Env> {
  return async (c, next) => {
    const end = metrics.httpDuration.startTimer();
    try {
      await next();
    } finally {
      end({ method: METHODS.has(c.req.method) ? c.req.method : 'OTHER', route: routePath(c, -1), status: `${Math.floor(c.res.status / 100)}xx` });
    }
  };
}
