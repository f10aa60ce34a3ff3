import { metrics } from '../metrics/metrics.ts';
import { randomUUID } from 'node:crypto';
import { SignJWT, decodeProtectedHeader, jwtVerify } from 'jose';
import { z } from 'zod';
import type { Clock } from '../clock.ts';
import type { KeyStore } from './keys.ts';

/** What a session proves, carried in an RFC 9068 access token. */
export interface AccessClaims {
  sub: string;
  sid: string;
  amr: string[];
  acr: string;
  /** Epoch seconds. */
  auth_time: number;
  client_id?: string;
  scope?: string;
  roles?: string[];
  /** Whether the subject proved their email address (set by the service from emailVerifiedOf). */
  email_verified?: boolean;
}

export type VerifiedAccessClaims = AccessClaims & {
  iss: string;
  aud: string | string[];
  exp: number;
  iat: number;
  jti: string;
  client_id: string;
};

export interface TokenService {
  issue(c: AccessClaims): Promise<{ token: string; expiresIn: number; jti: string }>;
  /**
   * A token for a machine client (client_credentials): `sub` = `client_id`, no session, no
   * amr. `verify` refuses it (it requires `sid`), so no session-based route accepts it.
   */
  issueForClient(c: { client_id: string; scope?: string; roles?: string[] }): Promise<{ token: string; expiresIn: number; jti: string }>;
  /** Throws InvalidTokenError (`code: 'INVALID_TOKEN'`) on any failure. */
  verify(token: string): Promise<VerifiedAccessClaims>;
  /** A machine client's token (issueForClient): no `sid`, `sub` = `client_id`. Throws InvalidTokenError. */
  verifyClient(token: string): Promise<{ client_id: string; roles: string[]; scope?: string; exp: number }>;
}

export interface TokenServiceOptions {
  issuer: string;
  audience: string;
  ttlSeconds: number;
  /** client_id when the claims carry none. Default 'threshold'. */
  clientId?: string;
  /** The subject's email_verified, read at issue (login, step-up, refresh): resource servers linking accounts rely on it. */
  emailVerifiedOf?: (sub: string) => Promise<boolean | null>;
}

/** Any reason an access token is not accepted; the reason stays private (`detail`). */
export class InvalidTokenError extends Error {
  readonly code = 'INVALID_TOKEN' as const;
  readonly status = 401;
  readonly expose = true;
  constructor(readonly detail: string, options?: { cause?: unknown }) {
    super('The access token is not valid.', options);
    this.name = 'InvalidTokenError';
    metrics.tokenVerifications.inc({ result: 'invalid' }); // thrown only by verify(): one per refused token
  }
}

export const isInvalidToken = (e: unknown): e is InvalidTokenError => e instanceof InvalidTokenError;

export const AT_TYP = 'at+jwt';
/** Accepted skew between our clock and the issuer's; small so expiry stays meaningful. */
const CLOCK_TOLERANCE_S = 10;
const MAX_TOKEN_LENGTH = 8192;

const claimsSchema = z.object({
  iss: z.string(),
  sub: z.string().min(1),
  aud: z.union([z.string(), z.array(z.string())]),
  exp: z.number().int(),
  iat: z.number().int(),
  jti: z.string().min(1),
  client_id: z.string().min(1),
  sid: z.string().min(1),
  amr: z.array(z.string()),
  acr: z.string(),
  auth_time: z.number().int(),
  scope: z.string().optional(),
  roles: z.array(z.string()).optional(),
  email_verified: z.boolean().optional(),
});

const clientClaimsSchema = z.object({
  sub: z.string().min(1),
  client_id: z.string().min(1),
  exp: z.number().int(),
  scope: z.string().optional(),
  roles: z.array(z.string()).optional(),
});

/** Header typ, compared the way RFC 8725 §3.11 says (case-insensitive, optional application/). */
const isAtJwt = (typ: unknown) =>
  typeof typ === 'string' && typ.toLowerCase().replace(/^application\//, '') === AT_TYP;

export function createTokenService(keys: KeyStore, clock: Clock, opts: TokenServiceOptions): TokenService {
  const clientId = opts.clientId ?? 'threshold';
  const nowS = () => Math.floor(clock.now() / 1000);
  /**
   * The signature, header and registered claims of one of our access tokens (people's and machine
   * clients' alike; only the required claims differ). The key decides the algorithm, never the
   * token: this is what rejects `none` and HS* over our public key.
   */
  const verifySigned = async (token: unknown, requiredClaims: string[]): Promise<Record<string, unknown>> => {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw new InvalidTokenError('malformed token');
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch (e) {
      throw new InvalidTokenError('malformed header', { cause: e });
    }
    if (!isAtJwt(header.typ)) throw new InvalidTokenError(`typ must be ${AT_TYP}`);
    if (typeof header.kid !== 'string') throw new InvalidTokenError('missing kid');
    const key = await keys.publicKey(header.kid);
    if (!key) throw new InvalidTokenError('unknown or retired kid');
    if (header.alg !== key.alg) throw new InvalidTokenError('alg does not match the key');
    try {
      const { payload } = await jwtVerify(token, key.key, {
        algorithms: [key.alg],
        typ: AT_TYP,
        issuer: opts.issuer,
        audience: opts.audience,
        currentDate: new Date(clock.now()),
        clockTolerance: CLOCK_TOLERANCE_S,
        requiredClaims,
      });
      return payload;
    } catch (e) {
      throw new InvalidTokenError(e instanceof Error ? e.message : 'verification failed', { cause: e });
    }
  };
  /** An RFC 9068 access token (people's and machine clients' alike): only the claims differ. */
  const sign = async (k: Awaited<ReturnType<KeyStore['active']>>, payload: Record<string, unknown>, sub: string, iat: number, jti: string) => {
    const token = await new SignJWT(payload)
      .setProtectedHeader({ alg: k.alg, kid: k.kid, typ: AT_TYP })
      .setIssuer(opts.issuer)
      .setSubject(sub)
      .setAudience(opts.audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + opts.ttlSeconds)
      .setJti(jti)
      .sign(k.key);
    return { token, expiresIn: opts.ttlSeconds, jti };
  };

  return {
    async issue(c) {
      const k = await keys.active();
      const iat = nowS();
      const jti = randomUUID();
      const payload: Record<string, unknown> = {
        client_id: c.client_id ?? clientId,
        sid: c.sid,
        amr: c.amr,
        acr: c.acr,
        auth_time: c.auth_time,
      };
      if (c.scope !== undefined) payload.scope = c.scope;
      if (c.roles !== undefined) payload.roles = c.roles;
      const verified = c.email_verified ?? (await opts.emailVerifiedOf?.(c.sub)) ?? null;
      if (verified !== null) payload.email_verified = verified;
      return sign(k, payload, c.sub, iat, jti);
    },

    async issueForClient(c) {
      const k = await keys.active();
      const iat = nowS();
      const jti = randomUUID();
      const payload: Record<string, unknown> = { client_id: c.client_id };
      if (c.scope) payload.scope = c.scope;
      if (c.roles) payload.roles = c.roles;
      return sign(k, payload, c.client_id, iat, jti);
    },

    // Stops forged, altered or expired machine tokens, and a person's token presented as one.
    async verifyClient(token) {
      const payload = await verifySigned(token, ['exp', 'iat', 'jti', 'sub', 'client_id']);
      const parsed = clientClaimsSchema.safeParse(payload);
      if (!parsed.success || parsed.data.sub !== parsed.data.client_id || 'sid' in payload) throw new InvalidTokenError('not a machine client token');
      return { client_id: parsed.data.client_id, roles: parsed.data.roles ?? [], exp: parsed.data.exp, ...(parsed.data.scope ? { scope: parsed.data.scope } : {}) };
    },

    // Stops forged, altered, replayed-after-expiry, wrong-audience and type-confused tokens
    // (an ID token or a token signed with `none`/HMAC over our public key).
    async verify(token) {
      const payload = await verifySigned(token, ['exp', 'iat', 'jti', 'sub', 'client_id', 'sid', 'auth_time']);
      const parsed = claimsSchema.safeParse(payload);
      if (!parsed.success) throw new InvalidTokenError('claims do not match RFC 9068');
      if (parsed.data.iat > nowS() + CLOCK_TOLERANCE_S) throw new InvalidTokenError('issued in the future');
      metrics.tokenVerifications.inc({ result: 'valid' });
      return parsed.data;
    },
  };
}
