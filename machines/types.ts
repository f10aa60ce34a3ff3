/**
 * Shared, JSON-only types of the state machines. Machines import nothing from src/ adapters;
 * the real behaviour behind each named actor is provided by src/ through `.provide()`.
 */

/**
 * What a client is asked for in a state: every state of a flow machine declares it as
 * `meta: { step }`, and the presenter reads it (it never guesses from state names).
 */
export type FlowStep =
  | 'password' | 'webauthn' | 'choose_method' | 'totp' | 'recovery_code' | 'code' | 'signup' | 'done' | 'denied' | 'locked'
  // Account recovery (machines/recovery.machine.ts): the emailed link, then the new password.
  | 'recovery_link' | 'new_password';
export interface StepMeta {
  step: FlowStep;
}

/**
 * Why the last client event was not accepted, kept in a flow's context as `error` beside the
 * human-readable messages; the route maps it to the problem (each is a code of the error registry).
 */
export type FlowErrorCode =
  | 'INVALID_CREDENTIALS'
  | 'SERVICE_UNAVAILABLE'
  | 'WEBAUTHN_FAILED'
  | 'MFA_CODE_INVALID'
  | 'MFA_CODE_EXPIRED'
  | 'DELIVERY_FAILED'
  | 'CODE_RESEND_TOO_SOON'
  // Sign-up (machines/signup.machine.ts)
  | 'PASSWORD_REJECTED'
  | 'EMAIL_DOMAIN_NOT_ALLOWED'
  | 'EMAIL_DISPOSABLE';

/** Why a login was refused after the user proved who they are; published with LOGIN_DENIED. */
export type LoginDenialReason = 'RISK_DENIED' | 'MFA_REQUIRED_NO_FACTOR' | 'SERVICE_UNAVAILABLE' | 'SESSION_LIMIT_REACHED';

/** Tags of states a flow can rest in, and of outcomes. */
export const TAG_AWAITING_INPUT = 'awaitingInput';
export const TAG_DELEGATING = 'delegating';

export type MfaMethod = 'webauthn' | 'totp' | 'sms' | 'email' | 'recovery_code';

/** Strongest first: the order in which methods are offered (phishing-resistant first). */
export const METHOD_STRENGTH: readonly MfaMethod[] = ['webauthn', 'totp', 'sms', 'email', 'recovery_code'];

export interface FlowMessage {
  code: string;
  text: string;
}

/** A failed step: the message shown and the error code the route answers with. */
export const failure = (code: FlowErrorCode, text: string): { messages: FlowMessage[]; error: FlowErrorCode } => ({
  messages: [{ code, text }],
  error: code,
});

/** What the risk scorer decided; raw signals stay server-side with the login event. */
export interface RiskOutcome {
  decision: 'allow' | 'step_up' | 'deny';
  level: 'low' | 'medium' | 'high';
  score: number;
  reasons: string[];
  policyVersion: string;
  contributions: Record<string, number>;
  signals: unknown;
  country: string | null;
  lat: number | null;
  lon: number | null;
  /** The policy demands a phishing-resistant factor (WebAuthn) for this risk band. */
  requirePhishingResistant?: boolean;
}

export interface PasswordResult {
  ok: boolean;
  /** Set when the identifier names a known identity (kept server-side, never presented). */
  identityId: string | null;
  /** The identity's usable second factors, strongest first (only when ok). */
  methods: MfaMethod[];
  /** True when the account is (now) locked; presented exactly like a wrong password. */
  accountLocked: boolean;
  /** The password is known breached (flagged now or before): the login's answer asks for a change. */
  changeRequired?: boolean;
}

export interface RiskActorInput {
  flowId: string;
  identityId: string | null;
  deviceId: string | null;
  ip: string;
  userAgent?: string | null;
  /** The remembered device presented at flow start, if any (checked against the identity by the scorer's caller). */
  rememberedDevice?: string | null;
}

/** Second-factor events a client can send (to a login's MFA step or a step-up flow). */
export type MfaEvent =
  | { type: 'choose'; method: MfaMethod }
  | { type: 'totp'; code: string }
  | { type: 'recovery_code'; code: string }
  | { type: 'code'; code: string }
  | { type: 'resend' }
  | { type: 'webauthn'; response: Record<string, unknown> };

/** Events a client can send to a login flow (`type` selects the machine event). */
export type ClientEvent = { type: 'password'; identifier: string; password: string } | MfaEvent;

/** Side effects a transition asks for; the runtime applies them after the flow is persisted. */
export type FlowEffect =
  | { type: 'login.failed'; identityId: string | null; reason: string; factor: string }
  | { type: 'login.locked'; identityId: string | null; reason: string }
  | { type: 'risk.decided'; identityId: string | null; risk: RiskOutcome }
  | { type: 'login.stepped_up'; identityId: string | null; reasons: string[] }
  | { type: 'login.denied'; identityId: string | null; reason: string }
  /** The flow allowed the login; it *succeeds* only once a session exists (the login service's completion). */
  | { type: 'login.allowed'; identityId: string; amr: string[]; factors: string[] }
  | { type: 'mfa.challenge_failed'; identityId: string; method: MfaMethod; attempts: number; reason: string }
  | { type: 'mfa.locked'; identityId: string; method: MfaMethod }
  | { type: 'mfa.code_sent'; identityId: string; channel: 'sms' | 'email' }
  | { type: 'mfa.verified'; identityId: string; method: MfaMethod; amr: string[] };

/** RFC 8176 amr: `mfa` only when two distinct factor kinds were proven. */
export function combineAmr(parts: string[]): string[] {
  const kinds = new Set<string>();
  const out: string[] = [];
  for (const p of parts) {
    if (!out.includes(p)) out.push(p);
    const kind = FACTOR_KIND[p];
    if (kind) kinds.add(kind);
  }
  if (kinds.size >= 2 && !out.includes('mfa')) out.push('mfa');
  return out;
}

/** Which NIST factor kind each amr value proves (something you know / have / are). */
const FACTOR_KIND: Record<string, 'know' | 'have' | 'are'> = {
  pwd: 'know',
  pin: 'know',
  otp: 'have',
  hwk: 'have',
  swk: 'have',
  sms: 'have',
  // Recovery codes are NIST look-up secrets (something you have); RFC 8176 has no value for
  // them, so the internal marker `lookup` counts as a possession factor and is not published.
  lookup: 'have',
  fpt: 'are',
  face: 'are',
};

/** amr values that may be published (RFC 8176 registry); internal markers are dropped. */
export const publishAmr = (amr: string[]): string[] => amr.filter((v) => v !== 'lookup' && v !== 'email');

/** acr per the assurance reached: aal2 when multi-factor. */
export const acrFor = (amr: string[]): string => (amr.includes('mfa') ? ACR.aal2 : ACR.aal1);
export const ACR = { aal1: 'urn:threshold:acr:aal1', aal2: 'urn:threshold:acr:aal2' } as const;

/**
 * The `meta.step` of the deepest state in `value` that declares one. Takes the machine's root
 * state node (`machine.root`), so this module needs nothing from xstate at run time.
 */
export function stepOfValue(root: StateNodeLike, value: unknown): FlowStep | undefined {
  let node: StateNodeLike | undefined = root;
  let v: unknown = value;
  let step: FlowStep | undefined;
  while (node && v !== undefined && v !== null) {
    const key: string | undefined = typeof v === 'string' ? v : typeof v === 'object' ? Object.keys(v as object)[0] : undefined;
    if (key === undefined) break;
    node = node.states?.[key];
    step = (node?.meta as Partial<StepMeta> | undefined)?.step ?? step;
    v = typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined;
  }
  return step;
}

export interface StateNodeLike {
  meta?: unknown;
  states?: Record<string, StateNodeLike>;
}
