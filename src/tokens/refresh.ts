import { metrics } from '../metrics/metrics.ts';
import { createActor, fromPromise, toPromise, type ActorSystem } from 'xstate';
import type { Audit } from '../audit/audit.ts';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import { sha256 } from '../crypto/seal.ts';
import { AppError } from '../errors.ts';
import { formatIPv4, parseIp, unmapIPv4 } from '../risk/cidr.ts';
import type { Geo } from '../risk/geo.ts';
import type { SessionService, SessionSlide } from '../session/sessions.ts';
import type { TokenService } from './access-token.ts';
import { createRefreshStore } from './refresh-store.ts';
import {
  REFRESH_DESCRIPTIONS,
  refreshMachine,
  type RefreshClient,
  type RefreshInput,
  type RefreshOutput,
  type RefreshRecord,
  type RescoreInput,
  type RevokeFamilyInput,
  type RiskVerdict,
  type RotateInput,
  type RotateResult,
  type SessionClaims,
  type TokenSet,
} from '../../machines/refresh.machine.ts';

export { STEP_UP_REQUIRED_DESCRIPTION } from '../../machines/refresh.machine.ts';

/**
 * Refresh tokens: opaque 256-bit values stored as sha256, one family per sign-in (session),
 * rotated atomically in Postgres on every use (RFC 9700 §4.14, RFC 6749 §6).
 *
 * - Reuse: presenting a token that was already rotated revokes the whole family and locks the
 *   session (audited `refresh.reuse_detected`); the newest token stops working too. Of several
 *   concurrent uses of one token exactly one rotates it; the others are reuse.
 * - Grace (off by default, `reuseGraceSeconds` = 0): when enabled, the immediately previous token
 *   presented again within the window is answered with the *same* current child token (and a
 *   new access token) instead of counting as reuse; an older token, or the same one after the
 *   window, is reuse. The child is kept sealed under a key derived from the previous token, so
 *   only its holder can get it back. It trades a little theft detection for clients that retry a
 *   refresh whose answer they lost.
 * - Lifetime: a refresh token never outlives its session's absolute expiry, and a refresh of an
 *   ended (revoked, locked, expired) session fails: refresh never extends a sign-in.
 * - Risk: when the client's country or network (/24 IPv4, /48 IPv6) differs from the family's
 *   newest token, `rescore` decides. `step_up` refuses with `invalid_grant` and the documented
 *   `error_description` "step_up_required: re-authenticate with POST /auth/stepup or a new login"
 *   (the token stays valid where it was); `deny` revokes the family. No answer in time is a step-up.
 */
export interface RefreshDeps {
  db: Db;
  clock: Clock;
  audit: Audit;
  sessions: SessionService;
  tokens: TokenService;
  geo: Geo;
  /** Lifetime of each refresh token; capped by the session's absolute expiry. */
  ttlSeconds: number;
  /** 0 (default) disables the grace; at most 300. */
  reuseGraceSeconds?: number;
  rescore?: (o: RescoreInput) => Promise<RiskVerdict>;
  /** Deadline of `rescore`; default 2000 ms. */
  rescoreTimeoutMs?: number;
  /** Roles for the first access token of a family (`issue`); a refresh reads them with the token. */
  roleNames?: (identityId: string) => Promise<string[]>;
  /** What reuse does to the session: `lock` (default; an admin may unlock) or `revoke`. */
  reuseSessionAction?: 'lock' | 'revoke';
  /** Told once per detected reuse (e.g. to email the user); its errors do not change the answer. */
  onReuse?: (o: { identityId: string; sessionId: string; familyId: string }) => Promise<void>;
}

export type RefreshResult = ({ ok: true } & TokenSet) | { ok: false; error: 'invalid_grant'; error_description: string };

export interface RefreshService {
  /** The first token of a new family for a live session (login completion with `returnTokens`). */
  issue(o: { sessionId: string; identityId: string; ip: string | null; deviceId: string | null }): Promise<string>;
  /** Throws AppError SERVICE_UNAVAILABLE when the store fails; every refusal is `invalid_grant`. */
  refresh(token: string, ctx: { ip: string; deviceId: string | null }): Promise<RefreshResult>;
  /** The families die with their session (logout, revocation). */
  revokeSession(sessionId: string, reason: string): Promise<void>;
  /** After a step-up replaced `from` by `to`, the families follow; `client` is where it happened. */
  rebindSession(from: string, to: string, client?: { ip: string; deviceId: string | null }): Promise<void>;
}

interface PendingRefresh {
  token: string;
  client: RefreshClient;
  failure: unknown;
  /** From the lookup: the identity's roles and the idle slide the rotation writes with the child. */
  roles: string[];
  slide: SessionSlide | null;
}

/** Our tokens: 32 random bytes, base64url. Anything else is unknown without a lookup. */
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The network an address is in for "did the client move": its /24 (IPv4) or /48 (IPv6). */
export function networkOf(ip: string): string {
  const p = parseIp(ip);
  if (!p) return `unparsed:${ip}`;
  const v4 = p.family === 4 ? p : unmapIPv4(p);
  if (v4) return `${formatIPv4(v4.value & 0xffffff00n)}/24`;
  const top = p.value >> 80n;
  return `${[(top >> 32n) & 0xffffn, (top >> 16n) & 0xffffn, top & 0xffffn].map((g) => g.toString(16)).join(':')}::/48`;
}

export function createRefreshService(deps: RefreshDeps): RefreshService {
  const { clock, audit, sessions, geo } = deps;
  if (!Number.isInteger(deps.ttlSeconds) || deps.ttlSeconds < 1) throw new TypeError('refresh ttlSeconds must be a positive integer');
  const graceSeconds = deps.reuseGraceSeconds ?? 0;
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > 300) {
    throw new TypeError('refresh reuseGraceSeconds must be an integer from 0 (off) to 300');
  }
  const graceMs = graceSeconds * 1000;
  const rescoreTimeoutMs = deps.rescoreTimeoutMs ?? 2000;
  const store = createRefreshStore({ db: deps.db, clock, audit, ttlSeconds: deps.ttlSeconds, grace: graceMs > 0 });
  const countryOf = (ip: string | null) => (ip ? (geo.lookup(ip)?.country ?? null) : null);

  function accessToken(identityId: string, s: SessionClaims, roles: string[]) {
    // What the session proved, unchanged: a refresh never raises or refreshes amr/acr/auth_time.
    return deps.tokens.issue({ sub: identityId, sid: s.sid, amr: s.amr, acr: s.acr, auth_time: s.authTime, roles });
  }

  /** One statement reads the token, its family, the identity's roles and the session row. */
  async function lookup(req: PendingRefresh, tokenHash: string): Promise<RefreshRecord | null> {
    const t = await store.find(tokenHash);
    if (!t) return null;
    const usable = !t.revoked && t.identityActive && t.session ? sessions.activityOf(t.session) : null;
    const s = usable?.record ?? null;
    req.roles = t.roles;
    req.slide = usable?.slide ?? null;
    // For the immediately previous token (grace), the family's newest token is its child.
    const last = t.rotatedAt !== null && t.child ? t.child : t;
    return {
      tokenId: t.id,
      familyId: t.familyId,
      sessionId: t.sessionId,
      identityId: t.identityId,
      expiresAt: t.expiresAt,
      rotatedAt: t.rotatedAt,
      revoked: t.revoked,
      session:
        s && s.identityId === t.identityId
          ? { sid: s.id, amr: s.amr, acr: s.acr, authTime: s.authTime, absoluteExpiresAt: s.absoluteExpiresAt }
          : null,
      last: { network: last.ip ? networkOf(last.ip) : null, country: last.country },
      childCurrent: t.child?.live ?? false,
    };
  }

  async function rotate(req: PendingRefresh, i: RotateInput): Promise<RotateResult> {
    // Signed first, outside the statement (a signing key may need the database); discarded if
    // the rotation loses. The rotation also slides the session's idle window: a refresh is activity.
    const at = await accessToken(i.identityId, i.session, req.roles);
    const r = await store.rotate({
      tokenId: i.tokenId,
      familyId: i.familyId,
      parentToken: req.token,
      absoluteExpiresAt: i.session.absoluteExpiresAt,
      client: { ip: i.client.ip, country: i.client.country, deviceId: i.client.deviceId },
      slide: req.slide,
    });
    if (!r.ok) return r;
    return { ok: true, tokens: { access_token: at.token, token_type: 'Bearer', expires_in: at.expiresIn, refresh_token: r.child } };
  }

  async function reissue(req: PendingRefresh, i: RotateInput): Promise<RotateResult> {
    const child = await store.currentChild({ tokenId: i.tokenId, parentToken: req.token, graceMs });
    if (!child) return { ok: false, reason: 'raced' };
    const t = await accessToken(i.identityId, i.session, req.roles);
    if (req.slide) await sessions.touch(i.session.sid).catch(() => undefined);
    return { ok: true, tokens: { access_token: t.token, token_type: 'Bearer', expires_in: t.expiresIn, refresh_token: child } };
  }

  async function revokeFamily(i: RevokeFamilyInput, client: RefreshClient): Promise<void> {
    const reuse = i.reason === 'refresh_reuse';
    const first = await store.revokeFamily(i.familyId, i.reason, {
      type: reuse ? 'refresh.reuse_detected' : 'refresh.refused',
      actor: i.identityId,
      subject: i.sessionId,
      reason: reuse ? 'REFRESH_REUSE' : 'RISK_DENY',
      data: { family: i.familyId, token: i.tokenId, country: client.country, familyRevoked: true },
    });
    if (reuse) metrics.refreshReuse.inc();
    if (!i.lockSession) return;
    // The first detection ends the session; later ones (a burst of replays) only make sure it is,
    // e.g. when the first died between the two steps.
    if (!first && !(await sessions.byId(i.sessionId))) return;
    const action = deps.reuseSessionAction ?? 'lock';
    const ended = action === 'lock' ? await sessions.lock(i.sessionId, 'refresh_reuse') : await sessions.revoke(i.sessionId, 'refresh_reuse');
    // sessions.lock answers true for a session that was already locked: audit the first only.
    if (ended && first) {
      await audit.append({ type: action === 'lock' ? 'session.locked' : 'session.revoked', actor: i.identityId, subject: i.sessionId, reason: 'REFRESH_REUSE' });
    }
    if (first && deps.onReuse) await deps.onReuse({ identityId: i.identityId, sessionId: i.sessionId, familyId: i.familyId }).catch(() => undefined);
  }

  // One provided machine for the service. Each request's secrets (the presented token) travel
  // beside it, keyed by the request's actor system: never in machine context, and no per-request
  // .provide() (which rebuilds the machine).
  const requests = new WeakMap<ActorSystem<any>, PendingRefresh>();
  const act = <I, O>(f: (req: PendingRefresh, i: I) => Promise<O>, recordFailure = true) =>
    fromPromise<O, I>(async ({ input, system }) => {
      const req = requests.get(system);
      if (!req) throw new Error('refresh request context missing');
      try {
        return await f(req, input);
      } catch (e) {
        if (recordFailure) req.failure = e;
        throw e;
      }
    });
  const machine = refreshMachine.provide({
    actors: {
      lookup: act((req, i: { tokenHash: string }) => lookup(req, i.tokenHash)),
      // A failing scorer is not a store failure: the machine turns it into a step-up.
      rescore: act((_, i: RescoreInput) => (deps.rescore ? deps.rescore(i) : Promise.resolve<RiskVerdict>('allow')), false),
      rotate: act((req, i: RotateInput) => rotate(req, i)),
      reissue: act((req, i: RotateInput) => reissue(req, i)),
      revokeFamily: act((req, i: RevokeFamilyInput) => revokeFamily(i, req.client)),
    },
  });

  return {
    async issue(o) {
      const s = await sessions.byId(o.sessionId);
      if (!s || s.identityId !== o.identityId) throw new AppError('UNAUTHENTICATED', { privateDetail: 'refresh token for an unusable session' });
      const { token } = await store.createFamily({
        sessionId: s.id,
        identityId: s.identityId,
        absoluteExpiresAt: s.absoluteExpiresAt,
        ip: o.ip,
        country: countryOf(o.ip),
        deviceId: o.deviceId,
      });
      return token;
    },

    async refresh(token, ctx) {
      if (typeof token !== 'string' || !TOKEN_RE.test(token)) {
        return { ok: false, error: 'invalid_grant', error_description: REFRESH_DESCRIPTIONS.UNKNOWN_TOKEN };
      }
      const client: RefreshClient = { ip: ctx.ip, network: networkOf(ctx.ip), country: countryOf(ctx.ip), deviceId: ctx.deviceId };
      const input: RefreshInput = { tokenHash: sha256(token), now: clock.now(), graceMs, rescore: !!deps.rescore, rescoreTimeoutMs, client };
      const actor = createActor(machine, { input });
      const req: PendingRefresh = { token, client, failure: undefined, roles: [], slide: null };
      requests.set(actor.system, req);
      const done = toPromise(actor);
      actor.start();
      const out: RefreshOutput = await done;

      if (out.reason === 'STEP_UP_REQUIRED' || out.reason === 'RISK_UNAVAILABLE') {
        await audit.append({
          type: 'refresh.refused',
          actor: out.identityId ?? null,
          subject: out.sessionId ?? null,
          reason: out.reason,
          data: { family: out.familyId, country: client.country },
        });
      }
      if (out.ok && out.tokens) return { ok: true, ...out.tokens };
      if (out.error === 'temporarily_unavailable') {
        throw new AppError('SERVICE_UNAVAILABLE', { privateDetail: 'refresh-token store failed', cause: req.failure });
      }
      return { ok: false, error: 'invalid_grant', error_description: out.errorDescription ?? REFRESH_DESCRIPTIONS.REVOKED };
    },

    async revokeSession(sessionId, reason) {
      if (!UUID_RE.test(sessionId)) return;
      await store.revokeSession(sessionId, reason);
    },

    async rebindSession(from, to, client) {
      if (!UUID_RE.test(from) || !UUID_RE.test(to)) return;
      await store.rebind(from, to, client ? { ip: client.ip, country: countryOf(client.ip), deviceId: client.deviceId } : null);
    },
  };
}
