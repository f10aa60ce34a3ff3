import type { Context, Env as HonoEnv } from 'hono';
import type { Audit } from '../../audit/audit.ts';
import type { TokenService } from '../../tokens/access-token.ts';
import type { ExtraGrant } from '../../http/routes/token.ts';
import type { MachineClients } from './clients.ts';

const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

type Answer = Awaited<ReturnType<ExtraGrant<HonoEnv>>>;
const invalidClient = (): Answer => ({ status: 401, headers: { 'WWW-Authenticate': 'Basic realm="threshold"' }, body: { error: 'invalid_client', error_description: 'client authentication failed' } });
const bad = (error: string, error_description: string): Answer => ({ status: 400, body: { error, error_description } });

/** RFC 6749 §2.3.1: Basic credentials are the form-urlencoded id and secret; null when absent or malformed. */
function basicCredentials(header: string | undefined): { id: string; secret: string } | null | 'malformed' {
  if (!header) return null;
  const m = /^Basic ([A-Za-z0-9+/=]{1,1024})$/i.exec(header);
  if (!m) return 'malformed';
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const i = text.indexOf(':');
  if (i < 0) return 'malformed';
  try {
    return { id: decodeURIComponent(text.slice(0, i).replace(/\+/g, ' ')), secret: decodeURIComponent(text.slice(i + 1).replace(/\+/g, ' ')) };
  } catch {
    return 'malformed';
  }
}

/**
 * `grant_type=client_credentials` at /auth/token (RFC 6749 §4.4) for registered machine clients:
 * client_secret_basic or client_secret_post (one, not both), optional `scope` within the
 * client's; an access token with `sub` = client id and the client's roles, no refresh token.
 */
export function clientCredentialsGrant<E extends HonoEnv>(o: { clients: MachineClients; tokens: TokenService; audit: Audit }): ExtraGrant<E> {
  return async (params, c: Context<E>) => {
    const basic = basicCredentials(c.req.header('authorization'));
    const postId = params.get('client_id');
    const postSecret = params.get('client_secret');
    if (basic === 'malformed') return invalidClient();
    if (basic && (postId !== undefined || postSecret !== undefined)) return bad('invalid_request', 'use one client authentication method');
    const id = basic ? basic.id : postId;
    const secret = basic ? basic.secret : postSecret;
    if (!id || !secret) return invalidClient();

    const auth = await o.clients.authenticate(id, secret);
    if (!auth.ok) {
      await o.audit.append({ type: 'client_credentials.refused', subject: id.slice(0, 64), reason: auth.reason });
      return invalidClient();
    }
    const requested = params.get('scope');
    let scopes = auth.client.scopes;
    if (requested !== undefined) {
      const asked = requested.split(' ').filter(Boolean);
      if (!asked.every((x) => SCOPE_TOKEN.test(x))) return bad('invalid_scope', 'scope is malformed');
      const refused = asked.filter((x) => !auth.client.scopes.includes(x));
      if (refused.length) {
        await o.audit.append({ type: 'client_credentials.refused', subject: id, reason: 'INVALID_SCOPE', data: { scopes: refused.slice(0, 10) } });
        return bad('invalid_scope', 'a requested scope is not allowed for this client');
      }
      scopes = [...new Set(asked)];
    }
    const scope = scopes.join(' ');
    const t = await o.tokens.issueForClient({ client_id: auth.client.clientId, roles: auth.client.roles, ...(scope ? { scope } : {}) });
    // Not audited per grant: a hot machine path; refusals are (above), and admins see lastUsedAt.
    return { status: 200, body: { access_token: t.token, token_type: 'Bearer', expires_in: t.expiresIn, ...(scope ? { scope } : {}) } };
  };
}
