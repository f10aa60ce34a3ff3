import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/db.ts';
import type { Audit } from '../../audit/audit.ts';
import type { SessionRecord, SessionService } from '../../session/sessions.ts';
import type { TokenService } from '../../tokens/access-token.ts';
import type { RefreshService } from '../../tokens/refresh.ts';
import type { RiskOutcome } from '../../../machines/types.ts';
import { acrFor } from '../../../machines/types.ts';
import { isAppError } from '../../errors.ts';
import { tokenDigest, TrustedTokenError, type TrustedTokenVerifier, type VerifiedExternalToken } from './verifier.ts';

/**
 * RFC 8693 token exchange: a token from a trusted issuer (an IdP's ID or access token) becomes a
 * Threshold session with its own access and refresh tokens. The `okta` compatibility scheme
 * (known-user.ts) goes through the same steps, and finds the session again for the same token.
 *
 *   verify (verifier.ts) → subject → linked identity → claim the token once → risk → session →
 *   tokens → login event + audit
 */
export const TOKEN_TYPES = {
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  id_token: 'urn:ietf:params:oauth:token-type:id_token',
  access_token: 'urn:ietf:params:oauth:token-type:access_token',
  refresh_token: 'urn:ietf:params:oauth:token-type:refresh_token',
} as const;

export type ExchangeRefusal =
  | { error: 'invalid_grant'; reason: string; description: string }
  | { error: 'temporarily_unavailable'; reason: string; description: string };

export interface ExchangeContext {
  ip: string;
  deviceId: string | null;
  userAgent: string | null;
}

export interface ExchangedSession {
  session: SessionRecord;
  sessionToken: string;
  identityId: string;
  /** Set when tokens were asked for (the grant; not the okta scheme). */
  tokens?: { access_token: string; expires_in: number; refresh_token: string };
}

/** The okta scheme's later uses of one token: the session its first use started (null: none). */
export interface BoundSession {
  sessionId: string | null;
}

export interface ExchangeDeps {
  db: Db;
  clock: Clock;
  audit: Audit;
  sessions: SessionService;
  tokens: TokenService;
  refresh: RefreshService;
  verifier: TrustedTokenVerifier;
  roleNames: (identityId: string) => Promise<string[]>;
  /** Scores the sign-in like a login (the risk worker); null or a throw is no answer: fail closed. */
  score?: (o: { identityId: string; deviceId: string | null; ip: string; userAgent: string | null; key: string }) => Promise<RiskOutcome>;
  /** How long a concurrent use of an okta token waits for the first use's session (default 5000 ms; risk scoring is inside it). */
  firstUseWaitMs?: number;
  /** Records a login event (login_events) for risk history and explanations. */
  recordLogin?: (o: { key: string; identityId: string | null; outcome: 'succeeded' | 'failed' | 'denied'; risk: RiskOutcome | null; ctx: ExchangeContext; reason?: string; sessionId?: string }) => Promise<void>;
}

const refuse = (reason: string, description: string): ExchangeRefusal => ({ error: 'invalid_grant', reason, description });
/** Upstream amr values that say the IdP proved more than one factor (RFC 8176). */
const UPSTREAM_MFA = new Set(['mfa', 'otp', 'hwk', 'swk', 'sms', 'fpt', 'face', 'iris', 'retina', 'vbm', 'pop']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function createTokenExchange(deps: ExchangeDeps) {
  const { db, clock, audit, sessions } = deps;
  let lastSweep = 0;

  /** The local identity of an external subject: an existing link, or a verified email when the issuer allows it. */
  async function identityOf(v: VerifiedExternalToken): Promise<string | null> {
    const { rows } = await db.query<{ identity_id: string }>(
      "SELECT identity_id FROM external_identities WHERE issuer = $1 AND subject = $2 AND auth_protocol IN ('token_exchange', 'oidc')",
      [v.claims.iss, v.claims.sub],
    );
    if (rows[0]) return rows[0].identity_id;
    const email = typeof v.claims.email === 'string' ? v.claims.email.trim().toLowerCase() : null;
    // Never silently: only an issuer configured for it, and only an address the issuer verified.
    if (!v.issuer.linkByEmail || v.claims.email_verified !== true || !email || email.length > 254) return null;
    const found = await db.query<{ id: string }>("SELECT id FROM identities WHERE lower(email) = $1 AND status = 'active'", [email]);
    if (!found.rows[0]) return null;
    await db.query(
      `INSERT INTO external_identities (id, identity_id, issuer, subject, auth_protocol, email, created_at)
       VALUES ($1, $2, $3, $4, 'token_exchange', $5, $6) ON CONFLICT (issuer, subject) DO NOTHING`,
      [randomUUID(), found.rows[0].id, v.claims.iss, v.claims.sub, email, new Date(clock.now())],
    );
    const again = await db.query<{ identity_id: string }>('SELECT identity_id FROM external_identities WHERE issuer = $1 AND subject = $2', [v.claims.iss, v.claims.sub]);
    return again.rows[0]?.identity_id ?? null;
  }

  /**
   * The replay key: the issuer's jti when it has one, else the token's digest. The subject is part
   * of it: a `jti` is unique only as far as the issuer keeps it so, and the okta scheme hands the
   * session bound to a key to whoever presents that key again — two subjects must never share one.
   */
  const keyOf = (v: VerifiedExternalToken, token: string) =>
    typeof v.claims.jti === 'string' && v.claims.jti.length > 0 && v.claims.jti.length <= 256
      ? `jti:${tokenDigest(`${v.claims.iss}\n${v.claims.sub}\n${v.claims.jti}`)}`
      : `sha:${tokenDigest(token)}`;

  /** Stops a second exchange of one token: the first INSERT wins, even among 50 at once. */
  async function claim(key: string, v: VerifiedExternalToken): Promise<boolean> {
    const now = clock.now();
    if (now - lastSweep > 60_000) {
      lastSweep = now;
      await db.query('DELETE FROM subject_token_uses WHERE expires_at < $1', [new Date(now - 60_000)]);
    }
    const { rowCount } = await db.query(
      'INSERT INTO subject_token_uses (token_key, issuer, expires_at, used_at) VALUES ($1, $2, $3, $4) ON CONFLICT (token_key) DO NOTHING',
      [key, v.claims.iss, new Date((v.claims.exp + 60) * 1000), new Date(now)],
    );
    return rowCount === 1;
  }

  /**
   * A first use that started no session gives the token back: concurrent uses stop waiting for
   * it, and a later use is judged (and risk-scored) afresh.
   */
  async function unclaim(key: string) {
    await db.query('DELETE FROM subject_token_uses WHERE token_key = $1 AND session_id IS NULL', [key]);
  }

  /** What the session proves: `fed`, plus `mfa` only from an issuer trusted for it whose token says so. */
  function amrOf(v: VerifiedExternalToken, nowS: number) {
    const upstream = Array.isArray(v.claims.amr) ? (v.claims.amr as unknown[]).filter((a): a is string => typeof a === 'string').slice(0, 20) : [];
    const mfa = v.issuer.trustMfa && upstream.some((a) => UPSTREAM_MFA.has(a));
    const upstreamAt = typeof v.claims.auth_time === 'number' && v.claims.auth_time <= nowS ? v.claims.auth_time : (v.claims.iat ?? nowS);
    const amr = mfa ? ['fed', 'mfa'] : ['fed'];
    const factorTimes: Record<string, number> = { fed: nowS, ...(mfa ? { mfa: Math.min(nowS, upstreamAt) } : {}) };
    return { amr, acr: acrFor(amr), factorTimes, upstream };
  }

  async function refused(r: ExchangeRefusal, o: { via: string; issuer?: string; identityId?: string | null; key: string; ctx: ExchangeContext }) {
    if (o.identityId !== undefined) await deps.recordLogin?.({ key: o.key, identityId: o.identityId, outcome: r.reason === 'LOGIN_DENIED' ? 'denied' : 'failed', risk: null, ctx: o.ctx, reason: r.reason });
    // The okta scheme is presented on every request of an API: anonymous junk (no verified issuer)
    // is not audited there, as forward-auth does not audit anonymous 401s; the grant audits all.
    if (o.via !== 'okta_scheme' || o.issuer) {
      await audit.append({ type: 'token_exchange.refused', subject: o.identityId ?? null, reason: r.reason, data: { via: o.via, ...(o.issuer ? { issuer: o.issuer } : {}) } });
    }
    return r;
  }

  /**
   * Exchange a subject token for a session (and tokens when `withTokens`). `via` says who asked
   * (`token_exchange` or `okta_scheme`), for the audit trail.
   */
  async function exchange(subjectToken: string, ctx: ExchangeContext, opts: { withTokens: boolean; via: string; replay: 'refuse' | 'reuse' }): Promise<ExchangedSession | BoundSession | ExchangeRefusal> {
    const key0 = `tex_${randomUUID().replace(/-/g, '')}`;
    let v: VerifiedExternalToken;
    try {
      v = await deps.verifier.verify(subjectToken, 'token_exchange');
    } catch (e) {
      if (!(e instanceof TrustedTokenError)) throw e;
      if (e.reason === 'JWKS_UNAVAILABLE') return refused({ error: 'temporarily_unavailable', reason: e.reason, description: 'the issuer keys cannot be fetched; try again later' }, { via: opts.via, key: key0, ctx });
      return refused(refuse(e.reason, 'the subject token is not valid here'), { via: opts.via, key: key0, ctx });
    }
    const key = keyOf(v, subjectToken);
    // The okta scheme presents one token on every request: after the first, it names its session.
    if (opts.replay === 'reuse') {
      const bound = await sessionOf(key, true);
      if (bound !== undefined) return bound;
    }
    const identityId = await identityOf(v);
    if (!identityId) return refused(refuse('FED_SUBJECT_NOT_LINKED', 'the subject token is not valid here'), { via: opts.via, issuer: v.claims.iss, key: key0, ctx });

    if (!(await claim(key, v))) {
      if (opts.replay === 'refuse') return refused(refuse('SUBJECT_TOKEN_REPLAYED', 'the subject token was already exchanged'), { via: opts.via, issuer: v.claims.iss, identityId, key: key0, ctx });
      return (await sessionOf(key, true)) ?? { sessionId: null };
    }

    let risk: RiskOutcome | null = null;
    const proof = amrOf(v, Math.floor(clock.now() / 1000));
    if (deps.score) {
      try {
        risk = await deps.score({ identityId, deviceId: ctx.deviceId, ip: ctx.ip, userAgent: ctx.userAgent, key: key0 });
      } catch {
        risk = null;
      }
      const decision = risk?.decision ?? 'step_up'; // no answer: fail closed
      // A step-up is satisfied only by MFA the IdP proved and is trusted for; there is no flow here to ask for more.
      if (decision === 'deny' || (decision === 'step_up' && !proof.amr.includes('mfa'))) {
        await deps.recordLogin?.({ key: key0, identityId, outcome: 'denied', risk, ctx, reason: decision === 'deny' ? 'LOGIN_DENIED' : 'STEP_UP_REQUIRED' });
        const r = refuse(decision === 'deny' ? 'LOGIN_DENIED' : 'STEP_UP_REQUIRED', decision === 'deny' ? 'the sign-in was refused' : 'step_up_required: sign in interactively (POST /auth/login)');
        await audit.append({ type: 'token_exchange.refused', subject: identityId, reason: r.reason, data: { via: opts.via, issuer: v.claims.iss, risk: risk?.reasons ?? ['RISK_UNAVAILABLE'] } });
        await unclaim(key);
        return r;
      }
    }

    let created: Awaited<ReturnType<SessionService['create']>>;
    try {
      created = await sessions.create({ identityId, amr: proof.amr, acr: proof.acr, authTime: proof.factorTimes.fed, factorTimes: proof.factorTimes, deviceId: ctx.deviceId, ip: ctx.ip, country: risk?.country ?? null });
    } catch (e) {
      await unclaim(key);
      if (isAppError(e) && (e.code === 'ACCOUNT_LOCKED' || e.code === 'SESSION_LIMIT_REACHED')) {
        return refused(refuse(e.code, 'no session can be started for this account'), { via: opts.via, issuer: v.claims.iss, identityId, key: key0, ctx });
      }
      throw e;
    }
    const { session, token } = created;
    await db.query('UPDATE subject_token_uses SET session_id = $2 WHERE token_key = $1', [key, session.id]);
    await db.query('UPDATE external_identities SET last_login_at = $3, mfa_verified = $4 WHERE issuer = $1 AND subject = $2', [v.claims.iss, v.claims.sub, new Date(clock.now()), proof.amr.includes('mfa')]);

    let tokens: ExchangedSession['tokens'];
    if (opts.withTokens) {
      const at = await deps.tokens.issue({ sub: identityId, sid: session.id, amr: session.amr, acr: session.acr, auth_time: session.authTime, roles: await deps.roleNames(identityId) });
      const refresh_token = await deps.refresh.issue({ sessionId: session.id, identityId, ip: ctx.ip, deviceId: ctx.deviceId });
      tokens = { access_token: at.token, expires_in: at.expiresIn, refresh_token };
    }
    await deps.recordLogin?.({ key: key0, identityId, outcome: 'succeeded', risk, ctx, sessionId: session.id });
    const data = { via: opts.via, issuer: v.claims.iss, session: session.id, upstreamAmr: proof.upstream };
    await audit.appendMany([
      { type: 'login.succeeded', subject: identityId, reason: 'fed', data: { ...data, amr: session.amr } },
      { type: 'session.created', subject: identityId, reason: session.acr, data: { session: session.id, amr: session.amr } },
    ]);
    return { session, sessionToken: token, identityId, ...(tokens ? { tokens } : {}) };
  }

  /**
   * The session a claimed token started (the `okta` scheme presents the same token again):
   * undefined when the token was never claimed, `{ sessionId: null }` when its session is gone.
   * A concurrent first use may still be creating it: with `wait`, wait for it briefly.
   */
  async function sessionOf(key: string, wait: boolean): Promise<BoundSession | undefined> {
    // Another process may hold the first use: poll (with backoff) for as long as a first use can take.
    const until = Date.now() + (wait ? (deps.firstUseWaitMs ?? 5000) : 0);
    for (let delay = 10; ; delay = Math.min(delay * 2, 100)) {
      const { rows } = await db.query<{ session_id: string | null }>('SELECT session_id FROM subject_token_uses WHERE token_key = $1', [key]);
      if (!rows[0]) return undefined;
      if (rows[0].session_id) return { sessionId: rows[0].session_id };
      if (Date.now() + delay > until) return { sessionId: null };
      await sleep(delay);
    }
  }

  return { exchange };
}
export type TokenExchange = ReturnType<typeof createTokenExchange>;
export const isRefusal = (r: ExchangedSession | BoundSession | ExchangeRefusal): r is ExchangeRefusal => 'error' in r;
