/**
 * Session phases of the benchmark (test/bench/bench.ts):
 *
 *   - the baseline: a plain Hono route (`GET /ping` → "ok") on @hono/node-server, loopback;
 *   - `GET /auth/verify` (forward-auth) with a bearer access token and `X-Required-Permission`,
 *     answered from the warm verified-credential cache (plus its Redis deny-list check);
 *   - refresh rotations: `POST /auth/token` (grant_type=refresh_token, form-encoded), one token
 *     chain per client, each answer's refresh_token used for the next request.
 *
 * One user per client, signed in by a complete HTTP password login with `returnTokens: true`
 * (not measured). Login and refresh send the same X-Forwarded-For and device id, so no refresh is
 * re-scored for a network or country change.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { Db, Queryable } from '../../src/db/db.ts';
import { Client, IP, device, type TestServer } from '../helpers/server.ts';

type Op = (w: number) => Promise<string | null>;
const FORM = 'application/x-www-form-urlencoded';
/** The permission the verify phase asks for; PATHOLOGIST holds it at aal1. */
export const VERIFY_PERMISSION = 'VIEW_CASES';

/** Serves `app` on a loopback port; resolves with its base URL and a close(). */
async function listen(fetchHandler: (req: Request) => Response | Promise<Response>) {
  const server = serve({ fetch: fetchHandler, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((r) => server.once('listening', () => r()));
  const addr = server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return { url, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** The baseline: `app.get('/ping', c => c.text('ok'))`, same process, same fetch clients. */
export async function startPing() {
  const app = new Hono();
  app.get('/ping', (c) => c.text('ok'));
  const { url, close } = await listen(app.fetch);
  const op: Op = async () => {
    const res = await fetch(`${url}/ping`);
    const text = await res.text();
    return res.status === 200 && text === 'ok' ? null : `status ${res.status}`;
  };
  return { url, op, close };
}

export interface SignedIn {
  identityId: string;
  /** x-device-id and x-forwarded-for, sent on every request of this client. */
  headers: Record<string, string>;
  accessToken: string;
  refreshToken: string;
}

/** `count` users (PATHOLOGIST), each signed in once over HTTP with returnTokens. */
export async function signInUsers(srv: TestServer, count: number): Promise<SignedIn[]> {
  const password = 'bench sessions correct horse staple';
  const out: SignedIn[] = [];
  for (let i = 0; i < count; i++) {
    const email = `bench-sess-${i}-${Date.now()}@example.test`;
    const user = await srv.services.users.create({ email, password, roles: ['PATHOLOGIST'] });
    const headers = { 'x-device-id': device(`sess-${i}`), 'x-forwarded-for': IP.london };
    const r = await new Client(srv.url, headers).passwordLogin(email, password, { returnTokens: true });
    const t = r.body?.tokens;
    if (r.status !== 200 || r.body?.step !== 'done' || typeof t?.access_token !== 'string' || typeof t?.refresh_token !== 'string') {
      throw new Error(`sign-in of session user ${i} failed: status ${r.status} step=${r.body?.step ?? '?'} ${r.body?.code ?? ''}`);
    }
    out.push({ identityId: user.id, headers, accessToken: t.access_token, refreshToken: t.refresh_token });
  }
  return out;
}

/** `GET /auth/verify` of client w's own bearer token; 200 for the right user, or a failure label. */
export function verifyOp(srv: TestServer, users: SignedIn[]) {
  const headers = users.map((u) => ({ ...u.headers, authorization: `Bearer ${u.accessToken}`, 'x-required-permission': VERIFY_PERMISSION }));
  const op: Op = async (w) => {
    const res = await fetch(`${srv.url}/auth/verify`, { headers: headers[w] });
    await res.arrayBuffer(); // bodiless by design; drained so the connection is reused
    if (res.status !== 200) return `status ${res.status} ${res.headers.get('www-authenticate') ?? ''}`.trim();
    return res.headers.get('x-auth-user') === users[w].identityId ? null : 'wrong X-Auth-User';
  };
  const cache = srv.services.verifyCache;
  let s0 = cache.stats();
  return {
    op,
    /** Start counting cache hits and misses from now. */
    reset: () => {
      s0 = cache.stats();
    },
    cacheStats: () => {
      const s = cache.stats();
      const hits = s.hits - s0.hits;
      const misses = s.misses - s0.misses;
      return { hits, misses, hitRatio: hits + misses ? Math.round((hits / (hits + misses)) * 1000) / 1000 : 0 };
    },
  };
}

/**
 * Refresh-token chains against an OAuth token endpoint: client w posts its chain's current token
 * (form-encoded, plus `extra` parameters such as client credentials) and keeps the answer's
 * refresh_token for its next request. Sequential per client, so no token is ever presented twice.
 * A failed request breaks that chain (every later refresh of it fails too), which the zero-failure
 * rule catches.
 */
export function refreshChains(tokenUrl: string, headers: Record<string, string>[], first: string[], extra: Record<string, string> = {}) {
  const chains = [...first];
  let rotations = 0;
  const hdrs = headers.map((h) => ({ ...h, 'content-type': FORM }));
  const op: Op = async (w) => {
    const body = new URLSearchParams({ ...extra, grant_type: 'refresh_token', refresh_token: chains[w] }).toString();
    const res = await fetch(tokenUrl, { method: 'POST', headers: hdrs[w], body });
    const json = (await res.json().catch(() => null)) as { access_token?: unknown; refresh_token?: unknown; error?: string; error_description?: string } | null;
    if (res.status !== 200 || typeof json?.refresh_token !== 'string' || typeof json.access_token !== 'string') {
      return `status ${res.status} ${json?.error ?? ''} ${json?.error_description ?? ''}`.trim();
    }
    if (json.refresh_token === chains[w]) return 'refresh_token not rotated';
    chains[w] = json.refresh_token;
    rotations++;
    return null;
  };
  return { op, rotations: () => rotations };
}

/**
 * Postgres statements (BEGIN and COMMIT included) and transactions issued through `db` while `fn`
 * runs: a probe, run on an idle server outside the timed phases. Patches `db.query` and `db.tx`
 * for the duration only.
 */
export async function countQueries<T>(db: Db, fn: () => Promise<T>): Promise<{ statements: number; transactions: number; result: T }> {
  let statements = 0;
  let transactions = 0;
  const query = db.query;
  const tx = db.tx;
  const counted = (q: Queryable): Queryable => ({
    query: ((text: string, params?: unknown[]) => {
      statements++;
      return q.query(text, params);
    }) as Queryable['query'],
    exec: (sql: string) => {
      statements++;
      return q.exec(sql);
    },
  });
  db.query = counted({ query: query.bind(db), exec: db.exec.bind(db) }).query;
  db.tx = ((f: (q: Queryable) => Promise<unknown>) => {
    transactions++;
    statements += 2; // BEGIN, COMMIT
    return tx.call(db, (q) => f(counted(q)));
  }) as Db['tx'];
  try {
    const result = await fn();
    return { statements, transactions, result };
  } finally {
    db.query = query;
    db.tx = tx;
  }
}
