import { Hono, type Context, type Env as HonoEnv } from 'hono';
import { isAppError } from '../../errors.ts';
import type { RefreshService } from '../../tokens/refresh.ts';
import { routeDocs } from '../openapi/doc.ts';

const RefreshGrant = {
  jsonSchema: {
    type: 'object',
    properties: { grant_type: { const: 'refresh_token' }, refresh_token: { type: 'string', pattern: '^[\\x20-\\x7e]{1,1024}$' } },
    required: ['grant_type', 'refresh_token'],
  },
};
const OAuthError = {
  jsonSchema: {
    type: 'object',
    properties: {
      error: { enum: ['invalid_request', 'unsupported_grant_type', 'invalid_grant', 'temporarily_unavailable', 'server_error'] },
      error_description: { type: 'string' },
    },
    required: ['error'],
  },
};

export const tokenDocs = routeDocs('/auth/token', 'Tokens', {
  'POST /': {
    summary: 'Refresh grant (RFC 6749 §6): a new access token and a rotated refresh token',
    description: 'Answers RFC 6749 §5.2 JSON, not problem+json. Reusing a rotated refresh token revokes its whole family.',
    auth: 'none',
    bodies: { 'application/x-www-form-urlencoded': RefreshGrant, 'application/json': RefreshGrant },
    responses: {
      200: {
        description: 'The new token set',
        schema: {
          jsonSchema: {
            type: 'object',
            properties: { access_token: { type: 'string' }, token_type: { const: 'Bearer' }, expires_in: { type: 'integer' }, refresh_token: { type: 'string' } },
            required: ['access_token', 'token_type', 'expires_in', 'refresh_token'],
          },
        },
      },
      400: { description: '`invalid_request`, `unsupported_grant_type` or `invalid_grant`', schema: OAuthError },
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
}

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

  const answer = (c: Context<E>, status: 200 | 400 | 500 | 503, body: Record<string, unknown>) => {
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
    if (grant !== 'refresh_token') return fail(c, 400, 'unsupported_grant_type', 'only grant_type=refresh_token is supported here');
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
