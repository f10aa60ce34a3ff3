import type { TestServer } from '../helpers/server.ts';
import { VERIFY_PERMISSION, type SignedIn } from './sessions.ts';

type Op = (w: number) => Promise<string | null>;

/**
 * `GET /auth/verify` with client w's own API key (`X-API-Key`) and `X-Required-Permission`,
 * warm: the key is held verified in memory, so a request costs the API-key version read and the
 * key's rate-limit count (two Redis commands, sent together), the authorization from the RBAC
 * snapshot (one Redis GET) and no Postgres. Keys are made through the service (not measured), one
 * per bench user, with a rate limit far above what the phase can reach.
 */
export async function apiKeyVerifyOp(srv: TestServer, users: SignedIn[]) {
  const headers: Record<string, string>[] = [];
  for (const u of users) {
    const { key } = await srv.services.apiKeys.create(u.identityId, { name: 'bench', permissions: [VERIFY_PERMISSION], rateLimitPerMinute: 100_000 });
    headers.push({ ...u.headers, 'x-api-key': key, 'x-required-permission': VERIFY_PERMISSION });
  }
  const op: Op = async (w) => {
    const res = await fetch(`${srv.url}/auth/verify`, { headers: headers[w] });
    await res.arrayBuffer();
    if (res.status !== 200) return `status ${res.status}`;
    return res.headers.get('x-auth-user') === users[w].identityId ? null : 'wrong X-Auth-User';
  };
  return { op };
}
