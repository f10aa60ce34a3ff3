import { Hono, type Context, type Env as HonoEnv } from 'hono';
import { isAppError } from '../../errors.ts';
import type { RefreshService } from '../../tokens/refresh.ts';
import { routeDocs } from '../openapi/doc.ts';

/** RFC 6749 §5.2 and RFC 8693 §2.2.2 error codes this endpoint answers. */
export const OAUTH_ERRORS = ['invalid_request', 'invalid_client', 'unauthorized_client', 'unsupported_grant_type', 'invalid_grant', 'invalid_scope', 'invalid_target', 'temporarily_unavailable', 'server_error'] as const;

const VSCHAR_PATTERN = '^[\\x20-\\x7e]{1,1024}$';
const RefreshGrant = {
  type: 'object',
  properties: { grant_type: { const: 'refresh_token' }, refresh_token: { type: 'string', pattern: VSCHAR_PATTERN } },
  required: ['grant_type', 'refresh_token'],
};
const ExchangeGrant = {
  type: 'object',
  description: 'RFC 8693 token exchange: a JWT from a trusted issuer (src/authn/trusted-issuers) becomes a session and Threshold tokens',
  properties: {
    grant_type: { const: 'urn:ietf:params:oauth:grant-type:token-exchange' },
    subject_token: { type: 'string', maxLength: 16384 },
    subject_token_type: { enum: ['urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token', 'urn:ietf:params:oauth:token-type:access_token'] },
    requested_token_type: { enum: ['urn:ietf:params:oauth:token-type:access_token', 'urn:ietf:params:oauth:token-type:refresh_token'] },
    audience: { type: 'string', description: 'If given, Threshold\'s own token audience (TOKEN_AUDIENCE)' },
  },
  required: ['grant_type', 'subject_token', 'subject_token_type'],
};
const ClientCredentialsGrant = {
  type: 'object',
  description: 'RFC 6749 §4.4 for registered machine clients; client_secret_basic (Authorization: Basic) or client_secret_post',
  properties: { grant_type: { const: 'client_credentials' }, scope: { type: 'string' }, client_id: { type: 'string' }, client_secret: { type: 'string' } },
  required: ['grant_type'],
};
const Grants = { jsonSchema: { oneOf: [RefreshGrant, ExchangeGrant, ClientCredentialsGrant] } };
const OAuthError = {
  jsonSchema: {
    type: 'object',
    properties: {
      error: { enum: [...OAUTH_ERRORS] },
      error_description: { type: 'string' },
    },
    required: ['error'],
  },
};

export const tokenDocs = routeDocs('/auth/token', 'Tokens', {
  'POST /': {
    summary: 'Token endpoint: refresh (RFC 6749 §6), token exchange (RFC 8693), client_credentials (RFC 6749 §4.4)',
    description:
      'Answers RFC 6749 §5.2 JSON, not problem+json. Reusing a rotated refresh token revokes its whole family. ' +
      'A token exchange verifies the subject token locally against its issuer\'s cached JWKS, exchanges each token once, and answers ' +
      '`issued_token_type`, a `refresh_token` and the new `session` (`id`, `token` — the value for `Authorization: sid <token>` —, `amr`, `acr`, `expiresAt`).',
    auth: 'none',
    headers: { Authorization: 'client_credentials only: Basic client_id:client_secret' },
    bodies: { 'application/x-www-form-urlencoded': Grants, 'application/json': Grants },
    responses: {
      200: {
        description: 'The new token set',
        schema: {
          jsonSchema: {
            type: 'object',
            properties: {
              access_token: { type: 'string' },
              token_type: { const: 'Bearer' },
              expires_in: { type: 'integer' },
              refresh_token: { type: 'string' },
              issued_token_type: { type: 'string' },
              scope: { type: 'string' },
              session: { type: 'object' },
            },
            required: ['access_token', 'token_type', 'expires_in'],
          },
        },
      },
      400: { description: '`invalid_request`, `unsupported_grant_type`, `invalid_grant`, `invalid_target`, `invalid_scope` or `unauthorized_client`', schema: OAuthError },
      401: { description: '`invalid_client` (client_credentials)', schema: OAuthError, headers: { 'WWW-Authenticate': 'Basic' } },
      503: { description: '`temporarily_unavailable`: retry with the same refresh token', schema: OAuthError, headers: { 'Retry-After': 'Seconds' } },
    },
  },
});

/**
 * The OAuth token endpoint (RFC 6749 §3.2, §6), refresh grant only, mounted at /auth/token.
 * Answers are RFC 6749 §5.2 JSON (`error`, `error_description`), never problem+json, and are
 * never cached.
 */
export interface TokenRouteDeps<E extends HonoEnv> {
  refresh: RefreshService;
  clientIp: (c: Context<E>) => string;
  deviceId: (c: Context<E>) => string | null;
  /** Told about failures answered with a 5xx (logging). */
  onError?: (err: unknown) => void;
  /** Further grants by grant_type (token exchange, client_credentials): each answers its own RFC 6749 JSON. */
  grants?: Record<string, ExtraGrant<E>>;
}

/** A grant handler: the parameters as read (single strings), the context; its answer's status and body. */
export type ExtraGrant<E extends HonoEnv> = (params: Map<string, string>, c: Context<E>) => Promise<{ status: 200 | 400 | 401 | 500 | 503; body: Record<string, unknown>; headers?: Record<string, string> }>;

type OAuthError = 'invalid_request' | 'unsupported_grant_type' | 'invalid_grant' | 'temporarily_unavailable' | 'server_error';

/** RFC 6749 Appendix A: parameter values are VSCHARs; ours stay far below 1 KiB. */
const VSCHAR = /^[\x20-\x7e]{1,1024}$/;

class BadRequest extends Error {}

/** Form or JSON into single string parameters; a repeated parameter is invalid (RFC 6749 §3.2). */
async function readParams(c: Context): Promise<Map<string, string>> {
  const type = (c.req.header('content-type') ?? '').split(';')[0].trim().toLowerCase();
  const text = await c.req.text();
  const out = new Map<string, string>();
  if (type === 'application/x-www-form-urlencoded') {
    for (const [k, v] of new URLSearchParams(text)) {
      if (out.has(k)) throw new BadRequest(`parameter ${k} is repeated`);
      out.set(k, v);
    }
    return out;
  }
  if (type === 'application/json') {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new BadRequest('the body is not valid JSON');
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('the body must be a JSON object');
    for (const [k, v] of Object.entries(body)) {
      if (typeof v === 'string') out.set(k, v);
      else if (v !== undefined && v !== null) throw new BadRequest(`parameter ${k} must be a string`);
    }
    return out;
  }
  throw new BadRequest('send application/x-www-form-urlencoded or application/json');
}

export function tokenRoutes<E extends HonoEnv = HonoEnv>(deps: TokenRouteDeps<E>) {
  const app = new Hono<E>();

  const answer = (c: Context<E>, status: 200 | 400 | 401 | 500 | 503, body: Record<string, unknown>) => {
    c.header('Cache-Control', 'no-store');
    c.header('Pragma', 'no-cache');
    return c.json(body, status);
  };
  const fail = (c: Context<E>, status: 400 | 500 | 503, error: OAuthError, description: string) =>
    answer(c, status, { error, error_description: description });

  app.post('/', async (c) => {
    let params: Map<string, string>;
    try {
      params = await readParams(c);
    } catch (e) {
      if (e instanceof BadRequest) return fail(c, 400, 'invalid_request', e.message);
      throw e;
    }
    const grant = params.get('grant_type');
    if (!grant) return fail(c, 400, 'invalid_request', 'grant_type is required');
    const extra = deps.grants && Object.hasOwn(deps.grants, grant) ? deps.grants[grant] : undefined;
    if (extra) {
      try {
        const r = await extra(params, c);
        for (const [k, v] of Object.entries(r.headers ?? {})) c.header(k, v);
        return answer(c, r.status, r.body);
      } catch (e) {
        deps.onError?.(e);
        return fail(c, 500, 'server_error', 'an internal error occurred');
      }
    }
    if (grant !== 'refresh_token') return fail(c, 400, 'unsupported_grant_type', `grant_type must be one of refresh_token${Object.keys(deps.grants ?? {}).map((g) => `, ${g}`).join('')}`);
    const token = params.get('refresh_token');
    if (!token) return fail(c, 400, 'invalid_request', 'refresh_token is required');
    if (!VSCHAR.test(token)) return fail(c, 400, 'invalid_request', 'refresh_token is malformed');

    try {
      const r = await deps.refresh.refresh(token, { ip: deps.clientIp(c), deviceId: deps.deviceId(c) });
      if (!r.ok) return fail(c, 400, r.error, r.error_description);
      return answer(c, 200, { access_token: r.access_token, token_type: r.token_type, expires_in: r.expires_in, refresh_token: r.refresh_token });
    } catch (e) {
      deps.onError?.(e);
      if (isAppError(e) && e.code === 'SERVICE_UNAVAILABLE') {
        c.header('Retry-After', '1');
        return fail(c, 503, 'temporarily_unavailable', 'try again shortly with the same refresh token');
      }
      return fail(c, 500, 'server_error', 'an internal error occurred');
    }
  });

  return app;
}
