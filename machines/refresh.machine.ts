import { and, assign, fromPromise, setup } from 'xstate';

/**
 * One refresh-token request (RFC 6749 §6 with the rotation rules of RFC 9700 §4.14):
 * lookingUp → checking (unknown, revoked, session ended, reuse, expiry) → assessingRisk (only
 * when the client's network or country changed) → rotating (atomic in the store) → issued.
 * A token that was already rotated is reuse: the whole family is revoked and the session locked.
 *
 * One run per request; nothing is persisted, so there are no resting states. Pure: the named
 * actors are provided by src/tokens/refresh.ts. Times are epoch milliseconds from the input.
 */
export const REFRESH_MACHINE_VERSION = 1;

/**
 * The documented `error_description` of a refresh refused for a step-up: the client must prove
 * the user again (RFC 9470 step-up of the session, or a new login) before refreshing from here.
 */
export const STEP_UP_REQUIRED_DESCRIPTION = 'step_up_required: re-authenticate with POST /auth/stepup or a new login';

export type RiskVerdict = 'allow' | 'step_up' | 'deny';

/** Where the request comes from; `network` is the /24 (IPv4) or /48 (IPv6) the address is in. */
export interface RefreshClient {
  ip: string;
  network: string;
  country: string | null;
  deviceId: string | null;
}

export interface RefreshInput {
  /** sha256 of the presented token: the token itself never enters the machine. */
  tokenHash: string;
  now: number;
  /** 0 = no grace (the default): any second use of a rotated token is reuse. */
  graceMs: number;
  /** Whether a risk re-scorer is configured. */
  rescore: boolean;
  rescoreTimeoutMs: number;
  client: RefreshClient;
}

/** What the session proves; copied unchanged into every access token a refresh issues. */
export interface SessionClaims {
  sid: string;
  amr: string[];
  acr: string;
  /** Epoch seconds. */
  authTime: number;
  absoluteExpiresAt: number;
}

/** The presented token as the store knows it; `null` from `lookup` means unknown. */
export interface RefreshRecord {
  tokenId: string;
  familyId: string;
  sessionId: string;
  identityId: string;
  expiresAt: number;
  rotatedAt: number | null;
  /** The token or its family is revoked. */
  revoked: boolean;
  /** The session, if it is still usable (not revoked, locked, expired; identity active). */
  session: SessionClaims | null;
  /** Network and country of the family's newest token, to compare with the client's. */
  last: { network: string | null; country: string | null };
  /** This token's child is the family's live newest token (it is the "immediately previous" one). */
  childCurrent: boolean;
}

export interface TokenSet {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
}

/** `raced`: another request changed the token first (the machine looks it up again, once). */
export type RotateResult = { ok: true; tokens: TokenSet } | { ok: false; reason: 'raced' | 'session_ended' };

export interface RotateInput {
  tokenId: string;
  familyId: string;
  identityId: string;
  session: SessionClaims;
  client: RefreshClient;
}

export interface RevokeFamilyInput {
  familyId: string;
  sessionId: string;
  identityId: string;
  tokenId: string;
  reason: 'refresh_reuse' | 'risk_deny';
  /** Reuse also locks the session; a risk denial only kills the family. */
  lockSession: boolean;
}

export interface RescoreInput {
  identityId: string;
  ip: string;
  deviceId: string | null;
  country: string | null;
}

export type RefreshReason =
  | 'ROTATED'
  | 'REISSUED_IN_GRACE'
  | 'UNKNOWN_TOKEN'
  | 'REVOKED'
  | 'SESSION_ENDED'
  | 'EXPIRED'
  | 'REUSE_DETECTED'
  | 'STEP_UP_REQUIRED'
  | 'RISK_UNAVAILABLE'
  | 'RISK_DENY'
  | 'UNAVAILABLE';

export interface RefreshOutput {
  ok: boolean;
  error?: 'invalid_grant' | 'temporarily_unavailable';
  errorDescription?: string;
  reason: RefreshReason;
  tokens?: TokenSet;
  /** For the caller's audit; absent for unknown tokens. */
  familyId?: string;
  sessionId?: string;
  identityId?: string;
}

/** Public descriptions (RFC 6749 §5.2 `error_description`); reason codes stay internal. */
export const REFRESH_DESCRIPTIONS: Record<Exclude<RefreshReason, 'ROTATED' | 'REISSUED_IN_GRACE'>, string> = {
  UNKNOWN_TOKEN: 'refresh token not recognised',
  REVOKED: 'refresh token revoked',
  SESSION_ENDED: 'the session has ended; sign in again',
  EXPIRED: 'refresh token expired',
  REUSE_DETECTED: 'refresh token already used; every token of this sign-in is revoked',
  STEP_UP_REQUIRED: STEP_UP_REQUIRED_DESCRIPTION,
  // Fails closed exactly like a step-up: the client cannot tell a slow scorer from a decision.
  RISK_UNAVAILABLE: STEP_UP_REQUIRED_DESCRIPTION,
  RISK_DENY: 'refresh refused at high risk; every token of this sign-in is revoked',
  UNAVAILABLE: 'the service is temporarily unavailable; retry with the same refresh token',
};

export interface RefreshContext extends RefreshInput {
  record: RefreshRecord | null;
  /** `reissue`: the immediately previous token inside the grace window gets the current child. */
  mode: 'rotate' | 'reissue';
  lookups: number;
  tokens: TokenSet | null;
  reason: RefreshReason | null;
}

const rec = (c: RefreshContext) => c.record as RefreshRecord;

export const refreshMachine = setup({
  types: {} as { context: RefreshContext; input: RefreshInput; output: RefreshOutput },
  actors: {
    lookup: fromPromise<RefreshRecord | null, { tokenHash: string }>(async () => {
      throw new Error('lookup not provided');
    }),
    rescore: fromPromise<RiskVerdict, RescoreInput>(async () => {
      throw new Error('rescore not provided');
    }),
    rotate: fromPromise<RotateResult, RotateInput>(async () => {
      throw new Error('rotate not provided');
    }),
    /** Grace only: the current child of the presented token, unchanged, with a new access token. */
    reissue: fromPromise<RotateResult, RotateInput>(async () => {
      throw new Error('reissue not provided');
    }),
    revokeFamily: fromPromise<void, RevokeFamilyInput>(async () => {
      throw new Error('revokeFamily not provided');
    }),
  },
  delays: {
    rescoreTimeout: ({ context }) => context.rescoreTimeoutMs,
  },
  guards: {
    unknown: ({ context }) => context.record === null,
    revoked: ({ context }) => rec(context).revoked,
    sessionEnded: ({ context }) => {
      const s = rec(context).session;
      return s === null || s.absoluteExpiresAt <= context.now;
    },
    rotated: ({ context }) => rec(context).rotatedAt !== null,
    // Only the immediately previous token, only inside the window, only while its child is live.
    withinGrace: ({ context }) => {
      const r = rec(context);
      return context.graceMs > 0 && r.rotatedAt !== null && r.childCurrent && context.now - r.rotatedAt <= context.graceMs;
    },
    expired: ({ context }) => rec(context).expiresAt <= context.now,
    clientChanged: ({ context }) => {
      const { last } = rec(context);
      return context.rescore && (context.client.network !== last.network || context.client.country !== last.country);
    },
    reissue: ({ context }) => context.mode === 'reissue',
    verdictDeny: (_, v: RiskVerdict) => v === 'deny',
    verdictStepUp: (_, v: RiskVerdict) => v !== 'allow',
    done: (_, r: RotateResult) => r.ok,
    raced: (_, r: RotateResult) => !r.ok && r.reason === 'raced',
    /** One more lookup after a lost race, never a loop. */
    lookAgain: ({ context }, r: RotateResult) => !r.ok && r.reason === 'raced' && context.lookups < 2,
  },
  actions: {
    because: assign((_, reason: RefreshReason) => ({ reason })),
    countLookup: assign(({ context }) => ({ lookups: context.lookups + 1 })),
    setRecord: assign((_, record: RefreshRecord | null) => ({ record })),
    graceMode: assign({ mode: 'reissue' as const }),
    setTokens: assign(({ context }, r: RotateResult) => ({
      tokens: r.ok ? r.tokens : null,
      reason: context.mode === 'reissue' ? ('REISSUED_IN_GRACE' as const) : ('ROTATED' as const),
    })),
  },
}).createMachine({
  id: 'refresh',
  context: ({ input }) => ({ ...input, record: null, mode: 'rotate', lookups: 0, tokens: null, reason: null }),
  initial: 'lookingUp',
  states: {
    lookingUp: {
      entry: 'countLookup',
      invoke: {
        src: 'lookup',
        input: ({ context }) => ({ tokenHash: context.tokenHash }),
        onDone: { target: 'checking', actions: { type: 'setRecord', params: ({ event }) => event.output } },
        onError: { target: 'unavailable', actions: { type: 'because', params: 'UNAVAILABLE' } },
      },
    },
    checking: {
      always: [
        { guard: 'unknown', target: 'invalidGrant', actions: { type: 'because', params: 'UNKNOWN_TOKEN' } },
        { guard: 'revoked', target: 'invalidGrant', actions: { type: 'because', params: 'REVOKED' } },
        { guard: 'sessionEnded', target: 'invalidGrant', actions: { type: 'because', params: 'SESSION_ENDED' } },
        { guard: and(['withinGrace', 'clientChanged']), target: 'assessingRisk', actions: 'graceMode' },
        { guard: 'withinGrace', target: 'reissuing', actions: 'graceMode' },
        // Checked before expiry: an old rotated token is still evidence that it was copied.
        { guard: 'rotated', target: 'reuseDetected' },
        { guard: 'expired', target: 'invalidGrant', actions: { type: 'because', params: 'EXPIRED' } },
        { guard: 'clientChanged', target: 'assessingRisk' },
        { target: 'rotating' },
      ],
    },
    assessingRisk: {
      invoke: {
        src: 'rescore',
        input: ({ context }) => ({
          identityId: rec(context).identityId,
          ip: context.client.ip,
          deviceId: context.client.deviceId,
          country: context.client.country,
        }),
        onDone: [
          { guard: { type: 'verdictDeny', params: ({ event }) => event.output }, target: 'revokingForRisk' },
          {
            guard: { type: 'verdictStepUp', params: ({ event }) => event.output },
            target: 'stepUpRequired',
            actions: { type: 'because', params: 'STEP_UP_REQUIRED' },
          },
          { guard: 'reissue', target: 'reissuing' },
          { target: 'rotating' },
        ],
        // No answer is never an allow.
        onError: { target: 'stepUpRequired', actions: { type: 'because', params: 'RISK_UNAVAILABLE' } },
      },
      after: {
        rescoreTimeout: { target: 'stepUpRequired', actions: { type: 'because', params: 'RISK_UNAVAILABLE' } },
      },
    },
    reuseDetected: {
      invoke: {
        src: 'revokeFamily',
        input: ({ context }) => {
          const r = rec(context);
          return { familyId: r.familyId, sessionId: r.sessionId, identityId: r.identityId, tokenId: r.tokenId, reason: 'refresh_reuse' as const, lockSession: true };
        },
        onDone: { target: 'invalidGrant', actions: { type: 'because', params: 'REUSE_DETECTED' } },
        // Refused either way; the client's retry detects the reuse again and retries the revocation.
        onError: { target: 'unavailable', actions: { type: 'because', params: 'UNAVAILABLE' } },
      },
    },
    revokingForRisk: {
      invoke: {
        src: 'revokeFamily',
        input: ({ context }) => {
          const r = rec(context);
          return { familyId: r.familyId, sessionId: r.sessionId, identityId: r.identityId, tokenId: r.tokenId, reason: 'risk_deny' as const, lockSession: false };
        },
        onDone: { target: 'invalidGrant', actions: { type: 'because', params: 'RISK_DENY' } },
        onError: { target: 'unavailable', actions: { type: 'because', params: 'UNAVAILABLE' } },
      },
    },
    rotating: {
      invoke: {
        src: 'rotate',
        input: ({ context }) => {
          const r = rec(context);
          return { tokenId: r.tokenId, familyId: r.familyId, identityId: r.identityId, session: r.session as SessionClaims, client: context.client };
        },
        onDone: [
          { guard: { type: 'done', params: ({ event }) => event.output }, target: 'issued', actions: { type: 'setTokens', params: ({ event }) => event.output } },
          // Lost a race: look again, and the checks decide (reuse, grace, revoked).
          { guard: { type: 'lookAgain', params: ({ event }) => event.output }, target: 'lookingUp' },
          { guard: { type: 'raced', params: ({ event }) => event.output }, target: 'invalidGrant', actions: { type: 'because', params: 'REVOKED' } },
          { target: 'invalidGrant', actions: { type: 'because', params: 'SESSION_ENDED' } },
        ],
        onError: { target: 'unavailable', actions: { type: 'because', params: 'UNAVAILABLE' } },
      },
    },
    reissuing: {
      invoke: {
        src: 'reissue',
        input: ({ context }) => {
          const r = rec(context);
          return { tokenId: r.tokenId, familyId: r.familyId, identityId: r.identityId, session: r.session as SessionClaims, client: context.client };
        },
        onDone: [
          { guard: { type: 'done', params: ({ event }) => event.output }, target: 'issued', actions: { type: 'setTokens', params: ({ event }) => event.output } },
          // The child moved on meanwhile: this token is no longer the immediately previous one.
          { guard: { type: 'lookAgain', params: ({ event }) => event.output }, target: 'lookingUp' },
          { guard: { type: 'raced', params: ({ event }) => event.output }, target: 'invalidGrant', actions: { type: 'because', params: 'REVOKED' } },
          { target: 'invalidGrant', actions: { type: 'because', params: 'SESSION_ENDED' } },
        ],
        onError: { target: 'unavailable', actions: { type: 'because', params: 'UNAVAILABLE' } },
      },
    },
    issued: { type: 'final', tags: ['ok'] },
    invalidGrant: { type: 'final', tags: ['refused'] },
    stepUpRequired: { type: 'final', tags: ['refused'] },
    unavailable: { type: 'final', tags: ['failed'] },
  },
  output: ({ context }): RefreshOutput => {
    const r = context.record;
    const ids = r ? { familyId: r.familyId, sessionId: r.sessionId, identityId: r.identityId } : {};
    const reason = context.reason ?? 'UNAVAILABLE';
    if (context.tokens && (reason === 'ROTATED' || reason === 'REISSUED_IN_GRACE')) return { ok: true, reason, tokens: context.tokens, ...ids };
    const key = reason === 'ROTATED' || reason === 'REISSUED_IN_GRACE' ? 'UNAVAILABLE' : reason;
    return {
      ok: false,
      error: key === 'UNAVAILABLE' ? 'temporarily_unavailable' : 'invalid_grant',
      errorDescription: REFRESH_DESCRIPTIONS[key],
      reason: key,
      ...ids,
    };
  },
});
