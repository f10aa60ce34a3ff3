import type { Context, Env as HonoEnv } from 'hono';
import type { ExtraGrant } from '../../http/routes/token.ts';
import { isRefusal, TOKEN_TYPES, type ExchangeContext, type TokenExchange } from './exchange.ts';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

const SUBJECT_TYPES = new Set<string>([TOKEN_TYPES.jwt, TOKEN_TYPES.id_token, TOKEN_TYPES.access_token]);
const REQUESTED_TYPES = new Set<string>([TOKEN_TYPES.access_token, TOKEN_TYPES.refresh_token]);
const MAX_SUBJECT_TOKEN = 16 * 1024;

const error = (status: 400 | 503, err: string, description: string) => ({ status, body: { error: err, error_description: description } });

/**
 * `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` at /auth/token (RFC 8693 §2.1):
 * checks the parameters (a short list, in order), exchanges, answers §2.2.1 or §2.2.2.
 * There is no client authentication: the subject token is the credential, bound to our
 * audience by its issuer's configuration, and exchanged once.
 */
export function tokenExchangeGrant<E extends HonoEnv>(o: { exchange: TokenExchange; audience: string; context: (c: Context<E>) => ExchangeContext }): ExtraGrant<E> {
  return async (params, c) => {
    const subjectToken = params.get('subject_token');
    const subjectType = params.get('subject_token_type');
    const requested = params.get('requested_token_type');
    const audience = params.get('audience');
    if (!subjectToken) return error(400, 'invalid_request', 'subject_token is required');
    if (subjectToken.length > MAX_SUBJECT_TOKEN) return error(400, 'invalid_request', 'subject_token is too long');
    if (!subjectType) return error(400, 'invalid_request', 'subject_token_type is required');
    if (!SUBJECT_TYPES.has(subjectType)) return error(400, 'invalid_request', 'subject_token_type must be a JWT, an ID token or an access token (urn:ietf:params:oauth:token-type:…)');
    if (requested !== undefined && !REQUESTED_TYPES.has(requested)) return error(400, 'invalid_request', 'requested_token_type must be urn:ietf:params:oauth:token-type:access_token');
    if (params.has('actor_token')) return error(400, 'invalid_request', 'delegation (actor_token) is not supported');
    // §2.2.2: a target we do not serve.
    if (audience !== undefined && audience !== o.audience) return error(400, 'invalid_target', 'audience must be this service');

    const r = await o.exchange.exchange(subjectToken, o.context(c), { withTokens: true, via: 'token_exchange', replay: 'refuse' });
    if (isRefusal(r)) {
      if (r.error === 'temporarily_unavailable') return { ...error(503, r.error, r.description), headers: { 'Retry-After': '5' } };
      return error(400, r.error, r.description);
    }
    if (!('tokens' in r) || !r.tokens) return error(400, 'invalid_grant', 'the subject token was already exchanged');
    const s = r.session;
    return {
      status: 200,
      body: {
        access_token: r.tokens.access_token,
        issued_token_type: TOKEN_TYPES.access_token,
        token_type: 'Bearer',
        expires_in: r.tokens.expires_in,
        refresh_token: r.tokens.refresh_token,
        session: {
          id: s.id,
          token: r.sessionToken,
          amr: s.amr,
          acr: s.acr,
          authTime: s.authTime,
          expiresAt: new Date(s.absoluteExpiresAt).toISOString(),
          idleExpiresAt: new Date(s.idleExpiresAt).toISOString(),
        },
      },
    };
  };
}
