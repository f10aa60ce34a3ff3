import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';

/**
 * The worker process's probes, for orchestrators (deploy/kubernetes): `GET /health/live` answers
 * 200 while the event loop turns; `GET /health/ready` runs every check (each bounded by a
 * deadline) and answers 503 naming the failed ones. Nothing else is served, and nothing is
 * listened on unless WORKER_HEALTH_PORT is set.
 */
export type HealthChecks = Record<string, () => Promise<void>>;

export async function readiness(checks: HealthChecks, timeoutMs = 2000): Promise<{ status: number; body: { status: string; checks: Record<string, string> } }> {
  const results: Record<string, string> = {};
  await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
      });
      try {
        await Promise.race([check(), deadline]);
        results[name] = 'up';
      } catch {
        results[name] = 'down';
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const failed = Object.values(results).some((r) => r !== 'up');
  return { status: failed ? 503 : 200, body: { status: failed ? 'degraded' : 'ok', checks: results } };
}

/** GET /metrics beside the probes, with the API's bearer token (METRICS_TOKEN); absent = 404. */
export interface MetricsExposure {
  token: string;
  render(): Promise<{ contentType: string; body: string }>;
}

export function startHealthServer(o: { port: number; host: string; checks: HealthChecks; metrics?: MetricsExposure }): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { status: 'method not allowed' });
    if (path === '/health/live') return send(200, { status: 'ok' });
    if (path === '/metrics' && o.metrics) {
      const m = o.metrics;
      const a = createHash('sha256').update(req.headers.authorization ?? '').digest();
      if (!timingSafeEqual(a, createHash('sha256').update(`Bearer ${m.token}`).digest())) return send(401, { status: 'unauthorized' });
      return void m.render().then(({ contentType, body }) => {
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
        res.end(body);
      }, () => send(500, { status: 'error' }));
    }
    if (path === '/health/ready' || path === '/health')
      return void readiness(o.checks).then(({ status, body }) => send(status, body));
    send(404, { status: 'not found' });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve(server));
  });
}
