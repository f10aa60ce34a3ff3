import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { Redis } from 'ioredis';
import { createApp } from '../../src/http/app.ts';
import type { Env } from '../../src/http/services.ts';
import { createVerifyCache, type VerifyCache } from '../../src/http/verify-cache.ts';
import { clearCacheOnRevocation, verifyRoutes, type VerifyOptions, type VerifyServices } from '../../src/http/routes/verify.ts';
import { createRevocationList, type RevocationList } from '../../src/session/revocation.ts';
import { TEST_REDIS_URL } from './db.ts';
import type { TestServer } from './server.ts';

export interface VerifyServer {
  url: string;
  revocations: RevocationList;
  verifyCache: VerifyCache;
  /** True when the composition root already provides revocations and mounts /auth/verify. */
  wired: boolean;
  close(): Promise<void>;
}

/**
 * Threshold with `/auth/verify` on a real socket. Until the composition root wires the
 * revocation list and the route, this mounts them beside `createApp` on the test server's own
 * services (real Postgres, real Redis); afterwards it simply returns what the app provides.
 */
export async function startVerifyServer(t: TestServer, o: { verify?: VerifyOptions; cacheTtlMs?: number; cacheMax?: number } = {}): Promise<VerifyServer> {
  const provided = t.services as Partial<VerifyServices>;
  if (provided.revocations && provided.verifyCache && !o.verify && o.cacheTtlMs === undefined && o.cacheMax === undefined) {
    return { url: t.url, revocations: provided.revocations, verifyCache: provided.verifyCache, wired: true, close: async () => {} };
  }
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  const revocations = provided.revocations ?? createRevocationList({ db: t.db, redis, clock: t.clock });
  await revocations.ready();
  const verifyCache = createVerifyCache({ clock: t.clock, ttlMs: o.cacheTtlMs, max: o.cacheMax });
  const off = clearCacheOnRevocation(revocations, verifyCache);
  const app = new Hono<Env>();
  // First, so it wins over the app's own /auth/verify.
  app.route('/auth/verify', verifyRoutes({ ...t.services, revocations, verifyCache }, o.verify));
  app.route('/', createApp(t.services));
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((r) => server.once('listening', () => r()));
  const addr = server.address();
  return {
    url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`,
    revocations,
    verifyCache,
    wired: false,
    async close() {
      off();
      await new Promise<void>((r) => server.close(() => r()));
      if (!provided.revocations) await revocations.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
