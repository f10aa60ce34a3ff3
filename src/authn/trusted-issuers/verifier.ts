import { createHash } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWSHeaderParameters } from 'jose';
import type { Clock } from '../../clock.ts';
import { ALLOWED_ALGS, servesPurpose, type IssuerRegistry, type Purpose, type TrustedIssuer } from './registry.ts';
import { JwksUnavailableError, UnknownKeyError, type JwksCache } from './jwks.ts';

/**
 * The one verifier of tokens from trusted issuers, used by token exchange, the `okta` scheme and
 * workload tokens. Everything is checked locally (signature against the cached JWKS, `iss`,
 * `aud`, `exp`/`nbf`, optional max age): no call to the issuer per token.
 */
export type TrustReason =
  | 'MALFORMED'
  | 'UNTRUSTED_ISSUER'
  | 'ALG_NOT_ALLOWED'
  | 'UNKNOWN_KEY'
  | 'BAD_SIGNATURE'
  | 'WRONG_AUDIENCE'
  | 'EXPIRED'
  | 'TOO_OLD'
  | 'NOT_YET_VALID'
  | 'CLAIMS_INVALID'
  | 'JWKS_UNAVAILABLE'
  | 'SUBJECT_NOT_MAPPED'
  | 'REVIEW_REFUSED'
  | 'REVIEW_UNAVAILABLE';

/** Why a token was refused: `reason` is for audit and logs, never shown beyond `invalid_grant`/401. */
export class TrustedTokenError extends Error {
  constructor(
    readonly reason: TrustReason,
    message: string = reason,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TrustedTokenError';
  }
}

export interface VerifiedExternalToken {
  issuer: TrustedIssuer;
  claims: JWTPayload & { iss: string; sub: string; exp: number };
  header: JWSHeaderParameters;
}

const MAX_TOKEN = 16 * 1024;
const JWS_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const CLOCK_TOLERANCE_S = 30;
const ASYMMETRIC = new Set<string>(ALLOWED_ALGS);

export const tokenDigest = (token: string) => createHash('sha256').update(token).digest('base64url');

/** The unverified `iss` of a compact JWS, or null: only to pick the issuer whose keys decide. */
export function peekIssuer(token: string): string | null {
  if (token.length > MAX_TOKEN || !JWS_SHAPE.test(token)) return null;
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === 'string' ? iss : null;
  } catch {
    return null;
  }
}

/** Stops forged, altered, expired, wrong-audience, `none`/HMAC and untrusted-issuer tokens. */
export function createTrustedTokenVerifier(deps: { registry: IssuerRegistry; jwks: JwksCache; clock: Clock }) {
  const { registry, jwks, clock } = deps;

  async function verify(token: string, purpose: Purpose): Promise<VerifiedExternalToken> {
    const iss = peekIssuer(token);
    if (iss === null) throw new TrustedTokenError('MALFORMED', 'not a compact JWS with an iss');
    let header: JWSHeaderParameters;
    try {
      header = decodeProtectedHeader(token);
    } catch (e) {
      throw new TrustedTokenError('MALFORMED', 'unreadable header', { cause: e });
    }
    const issuer = await registry.byIssuer(iss);
    if (!issuer || !servesPurpose(issuer, purpose)) throw new TrustedTokenError('UNTRUSTED_ISSUER', `issuer not trusted for ${purpose}`);
    // The configuration decides the algorithm, never the token (and never none or HS*).
    if (typeof header.alg !== 'string' || !ASYMMETRIC.has(header.alg) || !(issuer.algorithms as string[]).includes(header.alg)) {
      throw new TrustedTokenError('ALG_NOT_ALLOWED', `alg ${String(header.alg)} is not allowed`);
    }
    try {
      const { payload } = await jwtVerify(token, (h, t) => jwks.key(issuer, h, t), {
        issuer: issuer.issuer,
        audience: issuer.audiences,
        algorithms: issuer.algorithms as string[],
        currentDate: new Date(clock.now()),
        clockTolerance: CLOCK_TOLERANCE_S,
        requiredClaims: ['exp', 'sub', ...(issuer.maxTokenAgeSeconds ? ['iat'] : [])],
        ...(issuer.maxTokenAgeSeconds ? { maxTokenAge: issuer.maxTokenAgeSeconds } : {}),
      });
      if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 512) throw new TrustedTokenError('CLAIMS_INVALID', 'bad sub');
      return { issuer, header, claims: payload as VerifiedExternalToken['claims'] };
    } catch (e) {
      throw classify(e);
    }
  }

  return { verify };
}
export type TrustedTokenVerifier = ReturnType<typeof createTrustedTokenVerifier>;

function classify(e: unknown): TrustedTokenError {
  if (e instanceof TrustedTokenError) return e;
  if (e instanceof JwksUnavailableError) return new TrustedTokenError('JWKS_UNAVAILABLE', e.message, { cause: e });
  if (e instanceof UnknownKeyError || e instanceof errors.JWKSNoMatchingKey) return new TrustedTokenError('UNKNOWN_KEY', 'no key for this kid', { cause: e });
  if (e instanceof errors.JWTExpired) return new TrustedTokenError('EXPIRED', 'expired', { cause: e });
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'aud') return new TrustedTokenError('WRONG_AUDIENCE', 'audience not accepted', { cause: e });
    if (e.claim === 'nbf') return new TrustedTokenError('NOT_YET_VALID', 'not yet valid', { cause: e });
    if (e.claim === 'iat' && e.reason === 'check_failed') return new TrustedTokenError('TOO_OLD', 'older than the maximum age', { cause: e });
    return new TrustedTokenError('CLAIMS_INVALID', `claim ${e.claim} ${e.reason}`, { cause: e });
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) return new TrustedTokenError('BAD_SIGNATURE', 'signature does not verify', { cause: e });
  if (e instanceof errors.JOSEAlgNotAllowed) return new TrustedTokenError('ALG_NOT_ALLOWED', 'alg not allowed', { cause: e });
  return new TrustedTokenError('MALFORMED', e instanceof Error ? e.message : 'verification failed', { cause: e });
}
