import type { Context } from 'hono';
import { setCookie } from 'hono/cookie';
import { sessionCookieName } from './middleware/auth.ts';
import { ERRORS, type AppError } from '../errors.ts';
import type { AnyStateMachine } from 'xstate';
import { delegateSnapshot, type FlowRow, type PersistedSnapshot } from '../flows/runtime.ts';
import { loginMachine } from '../../machines/login.machine.ts';
import { mfaMachine } from '../../machines/mfa.machine.ts';
import { signupMachine } from '../../machines/signup.machine.ts';
import { recoveryMachine } from '../../machines/recovery.machine.ts';
import { stepOfValue, type FlowMessage, type FlowStep, type MfaMethod, type RiskOutcome } from '../../machines/types.ts';
import type { SessionRecord } from '../session/sessions.ts';
import { userMessage } from '../risk/explain.ts';
import { CHALLENGE_STEPS } from '../authn/methods/registry.ts';

/** The one place that serialises: flows are whitelisted field by field, never dumped. */

const iso = (ms: number) => new Date(ms).toISOString();

/** The machine each stored flow type runs; its states' `meta.step` is what the client is asked for. */
const FLOW_MACHINES: Record<string, AnyStateMachine> = { login: loginMachine, stepup: mfaMachine, signup: signupMachine, recovery: recoveryMachine };

/**
 * The state a flow is at, and the machine that runs it: the flow's own, or — while the flow
 * delegates — its child's (found by the runtime's rule, its logic looked up by the invoke `src`).
 */
function activeState(row: FlowRow): { machine: AnyStateMachine | undefined; snapshot: PersistedSnapshot; delegate?: PersistedSnapshot } {
  const machine = FLOW_MACHINES[row.type];
  const child = delegateSnapshot(row.snapshot);
  if (!child) return { machine, snapshot: row.snapshot };
  const childMachine = (machine?.implementations.actors as Record<string, unknown> | undefined)?.[child.src] as AnyStateMachine | undefined;
  return { machine: childMachine, snapshot: child.snapshot, delegate: child.snapshot };
}

function stepOf(row: FlowRow, expired: boolean): FlowStep | 'expired' {
  if (expired) return 'expired';
  const own = FLOW_MACHINES[row.type];
  const mine = own ? stepOfValue(own.root, row.snapshot.value) : undefined;
  if (mine) return mine;
  const { machine, snapshot } = activeState(row);
  // Every state declares its step (test/unit/flow-steps.test.ts); this is only a safe default.
  return (machine && stepOfValue(machine.root, snapshot.value)) ?? 'password';
}

export interface PresentedFlow {
  id: string;
  type: string;
  step: FlowStep | 'expired';
  methods?: MfaMethod[];
  challenge?: Record<string, unknown>;
  /** `message`: what to tell the person, without figures (src/risk/explain.ts userMessage). */
  risk?: { level: string; reasons: string[]; message: string };
  messages: FlowMessage[];
  expiresAt: string;
  /** The machine's state value as JSON (a string, or an object for nested states). */
  state: unknown;
}

export function presentFlow(row: FlowRow, opts: { expired?: boolean } = {}): PresentedFlow {
  const snap = row.snapshot;
  const ctx = (row.type === 'stepup' ? {} : snap.context) as { risk?: RiskOutcome | null; messages?: FlowMessage[] };
  // The MFA machine's snapshot: a step-up flow's root, or a login's delegate.
  const child = row.type === 'stepup' ? snap : activeState(row).delegate;
  const childCtx = child?.context as { methods?: MfaMethod[]; messages?: FlowMessage[]; challenge?: Record<string, unknown> | null } | undefined;
  const step = stepOf(row, !!opts.expired);
  const out: PresentedFlow = {
    id: row.id,
    type: row.type,
    step,
    messages: [...(ctx.messages ?? []), ...(childCtx?.messages ?? [])].map((m) => ({ code: m.code, text: m.text })),
    expiresAt: row.expires_at.toISOString(),
    state: snap.value,
  };
  if (childCtx?.methods && child?.status === 'active') out.methods = [...childCtx.methods];
  // WebAuthn request options, or { channel, to: masked } for a code; only while it is asked for.
  const challenge = childCtx?.challenge ?? (snap.context as { challenge?: Record<string, unknown> | null }).challenge;
  if (challenge && step !== 'expired' && CHALLENGE_STEPS.has(step)) out.challenge = challenge;
  if (ctx.risk) out.risk = { level: ctx.risk.level, reasons: [...ctx.risk.reasons], message: userMessage(ctx.risk.reasons) };
  return out;
}

export function presentSession(s: SessionRecord) {
  return {
    id: s.id,
    amr: s.amr,
    acr: s.acr,
    authTime: iso(s.authTime * 1000),
    expiresAt: iso(s.absoluteExpiresAt),
    idleExpiresAt: iso(s.idleExpiresAt),
  };
}

/** A finished flow's answer: the flow, the new session (cookie and summary) and any tokens. */
export function presentCompletion(
  c: Context,
  row: FlowRow,
  done: { sessionToken: string; session: SessionRecord; tokens?: Record<string, unknown>; passwordChangeRequired?: boolean } | undefined,
  opts: { secure: boolean; setCookie: boolean },
): Record<string, unknown> {
  const body: Record<string, unknown> = { ...presentFlow(row) };
  if (done) {
    if (opts.setCookie)
      setCookie(c, sessionCookieName(opts.secure), done.sessionToken, {
        httpOnly: true,
        secure: opts.secure,
        sameSite: 'Lax',
        path: '/',
        expires: new Date(done.session.absoluteExpiresAt),
      });
    const { id: _id, ...session } = presentSession(done.session);
    body.session = session;
    if (done.tokens) body.tokens = done.tokens;
    if (done.passwordChangeRequired) body.passwordChangeRequired = true;
  }
  c.header('Cache-Control', 'no-store');
  return body;
}

/** A session in a listing: device, country and last activity, never the raw IP list. */
export function presentSessionListing(s: SessionRecord, currentId?: string) {
  return {
    id: s.id,
    current: s.id === currentId,
    device: s.deviceId ? `…${s.deviceId.slice(-6)}` : null,
    country: s.country,
    amr: s.amr,
    state: s.state,
    createdAt: iso(s.createdAt),
    lastSeenAt: iso(s.lastSeenAt),
    expiresAt: iso(s.absoluteExpiresAt),
  };
}

/** RFC 9457 problem details with our stable code; 5xx never carries internals. */
export function problem(c: Context, err: AppError, requestId: string): Response {
  const body: Record<string, unknown> = {
    type: `https://threshold.dev/problems/${err.code.toLowerCase().replace(/_/g, '-')}`,
    title: ERRORS[err.code].title,
    status: err.status,
    code: err.code,
  };
  if (err.expose && err.detail) body.detail = err.detail;
  if (err.expose && err.extra) {
    for (const [k, v] of Object.entries(err.extra)) if (k !== 'flowRow') body[k] = v;
    const row = err.extra.flowRow as FlowRow | undefined;
    if (row) body.flow = presentFlow(row, { expired: err.code === 'FLOW_EXPIRED' });
  }
  if (err.status >= 500) body.requestId = requestId;
  const headers: Record<string, string> = { 'content-type': 'application/problem+json', ...(err.headers ?? {}) };
  return c.body(JSON.stringify(body), err.status as 400, headers);
}
