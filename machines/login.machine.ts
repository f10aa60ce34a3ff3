import { and, assign, emit, forwardTo, fromPromise, setup } from 'xstate';
import { MFA_MACHINE_VERSION, mfaMachine, type MfaEffect, type MfaOutput } from './mfa.machine.ts';
import {
  acrFor,
  combineAmr,
  failure,
  TAG_AWAITING_INPUT,
  TAG_DELEGATING,
  type ClientEvent,
  type FlowEffect,
  type FlowErrorCode,
  type FlowMessage,
  type LoginDenialReason,
  type MfaMethod,
  type PasswordResult,
  type RiskActorInput,
  type RiskOutcome,
  type StepMeta,
} from './types.ts';

/**
 * Password login with risk-adaptive step-up.
 * awaitingPassword → verifyingPassword → assessingRisk (deadline; fails closed) → deciding →
 * allowed | stepUp (invokes the MFA machine) | denied; locked after repeated failures.
 * Bump the version when behaviour changes; flows under way keep the rules they started with.
 */
export const LOGIN_MACHINE_VERSION = 6;

/**
 * What a stored login flow is versioned by: it carries the MFA child's snapshot too, so a change
 * of either machine retires flows under way (they expire rather than resume under new rules).
 */
export const LOGIN_FLOW_VERSION = LOGIN_MACHINE_VERSION * 1000 + MFA_MACHINE_VERSION;

export interface LoginInput {
  flowId: string;
  deviceId: string | null;
  ip: string;
  /** The User-Agent header at flow start (its family feeds the risk signals). */
  userAgent?: string | null;
  maxPasswordAttempts: number;
  maxMfaAttempts: number;
  riskTimeoutMs: number;
  identifier?: string | null;
  /** `passkey`: sign in with a discoverable WebAuthn credential, no identifier or password. */
  method?: 'password' | 'passkey';
  /** A remembered device the client presented at flow start (its id, not its token); risk decides what it is worth. */
  rememberedDevice?: string | null;
}

export interface LoginContext extends LoginInput {
  identifier: string | null;
  identityId: string | null;
  passwordAttempts: number;
  methods: MfaMethod[];
  risk: RiskOutcome | null;
  amr: string[];
  factors: string[];
  messages: FlowMessage[];
  /** The proven password is known breached: the done answer says a change is required. */
  passwordChangeRequired?: boolean;
  /** Why the last event was not accepted (the route answers with it); null when it was. */
  error: FlowErrorCode | null;
  /** Why the flow ended denied or locked. */
  reason: LoginDenialReason | 'TOO_MANY_ATTEMPTS' | 'MFA_LOCKED' | null;
  outcome: LoginOutput['outcome'] | null;
  /** Public WebAuthn request options while a passkey is asked for. */
  challenge: Record<string, unknown> | null;
}

export interface PasskeyResult {
  ok: boolean;
  identityId: string | null;
  amr: string[];
  methods: MfaMethod[];
}

export type LoginEvent = ClientEvent | MfaEffect;

/**
 * The methods a step-up offers: strongest first, and only phishing-resistant ones when the
 * policy demands it for this risk band and the user has one.
 */
export function offeredMethods(methods: MfaMethod[], risk: RiskOutcome | null): MfaMethod[] {
  if (risk?.requirePhishingResistant && methods.includes('webauthn')) return ['webauthn'];
  return methods;
}

export interface LoginOutput {
  outcome: 'allowed' | 'denied' | 'locked';
  identityId: string | null;
  amr: string[];
  acr: string;
  factors: string[];
  reason: LoginContext['reason'];
}

const invalidCredentials = () => failure('INVALID_CREDENTIALS', 'The identifier or password is incorrect.');
const unavailable = () => failure('SERVICE_UNAVAILABLE', 'Try again later.');
const step = (s: StepMeta['step']): StepMeta => ({ step: s });

/** The outcome when the scorer does not answer in time: step-up, never allow. */
export const riskUnavailable = (): RiskOutcome => ({
  decision: 'step_up',
  level: 'high',
  score: 0,
  reasons: ['RISK_UNAVAILABLE'],
  policyVersion: 'none',
  contributions: {},
  signals: null,
  country: null,
  lat: null,
  lon: null,
});

export const loginMachine = setup({
  types: {} as {
    context: LoginContext;
    events: LoginEvent;
    input: LoginInput;
    output: LoginOutput;
    emitted: FlowEffect;
  },
  actors: {
    verifyPassword: fromPromise<PasswordResult, { identifier: string; password: string }>(async () => {
      throw new Error('verifyPassword not provided');
    }),
    scoreRisk: fromPromise<RiskOutcome, RiskActorInput>(async () => {
      throw new Error('scoreRisk not provided');
    }),
    mfa: mfaMachine,
    startPasskey: fromPromise<Record<string, unknown>, { flowId: string }>(async () => {
      throw new Error('startPasskey not provided');
    }),
    verifyPasskey: fromPromise<PasskeyResult, { flowId: string; response: Record<string, unknown> }>(async () => {
      throw new Error('verifyPasskey not provided');
    }),
  },
  delays: {
    riskTimeout: ({ context }) => context.riskTimeoutMs,
  },
  guards: {
    passwordOk: (_, out: PasswordResult) => out.ok,
    // A locked account is answered exactly like a wrong password (no enumeration oracle): it
    // spends the flow's budget the same way, and the flow locks at the same count.
    passwordAttemptsLeft: ({ context }) => context.passwordAttempts + 1 < context.maxPasswordAttempts,
    riskDeny: ({ context }) => context.risk?.decision === 'deny',
    riskStepUp: ({ context }) => context.risk?.decision === 'step_up',
    riskAllow: ({ context }) => context.risk?.decision === 'allow',
    hasMfa: ({ context }) => context.methods.length > 0,
    // A user-verified passkey is already phishing-resistant multi-factor proof.
    alreadyMfa: ({ context }) => context.amr.includes('mfa'),
    passkeyFirst: ({ context }) => context.method === 'passkey',
    passkeyOk: (_, out: PasskeyResult) => out.ok && out.identityId !== null,
    mfaOk: (_, out: MfaOutput) => out.ok,
  },
  actions: {
    clearMessages: assign({ messages: [], error: null }),
    rememberIdentifier: assign({
      identifier: ({ event }) => (event.type === 'password' ? event.identifier : null),
    }),
    recordPasswordOk: assign((_, out: PasswordResult) => ({
      identityId: out.identityId,
      methods: out.methods,
      ...(out.changeRequired ? { passwordChangeRequired: true } : {}),
      amr: ['pwd'],
      factors: ['pwd'],
    })),
    recordPasswordFailure: assign(({ context }, out: PasswordResult) => ({
      identityId: out.identityId,
      passwordAttempts: context.passwordAttempts + 1,
      ...invalidCredentials(),
    })),
    emitPasswordFailure: emit(({ context }) => ({
      type: 'login.failed' as const,
      identityId: context.identityId,
      reason: 'INVALID_CREDENTIALS',
      factor: 'pwd',
    })),
    setLockedReason: assign({ reason: 'TOO_MANY_ATTEMPTS' }),
    recordPasskeyOk: assign((_, out: PasskeyResult) => ({
      identityId: out.identityId,
      methods: out.methods,
      amr: out.amr,
      factors: ['webauthn'],
      challenge: null,
    })),
    recordPasskeyFailure: assign(({ context }) => ({
      passwordAttempts: context.passwordAttempts + 1,
      ...failure('WEBAUTHN_FAILED', 'The passkey could not be verified.'),
    })),
    emitPasskeyFailure: emit(({ context }) => ({
      type: 'login.failed' as const,
      identityId: context.identityId,
      reason: 'WEBAUTHN_FAILED',
      factor: 'webauthn',
    })),
    emitLocked: emit(({ context }) => ({
      type: 'login.locked' as const,
      identityId: context.identityId,
      reason: context.reason ?? 'TOO_MANY_ATTEMPTS',
    })),
    setRisk: assign((_, risk: RiskOutcome) => ({ risk })),
    emitRisk: emit(({ context }) => ({
      type: 'risk.decided' as const,
      identityId: context.identityId,
      risk: context.risk as RiskOutcome,
    })),
    emitSteppedUp: emit(({ context }) => ({
      type: 'login.stepped_up' as const,
      identityId: context.identityId,
      reasons: context.risk?.reasons ?? [],
    })),
    emitDenied: emit(({ context }) => ({
      type: 'login.denied' as const,
      identityId: context.identityId,
      reason: context.reason ?? 'RISK_DENIED',
    })),
    emitAllowed: emit(({ context }) => ({
      type: 'login.allowed' as const,
      identityId: context.identityId as string,
      amr: context.amr,
      factors: context.factors,
    })),
    addFactor: assign(({ context }, out: MfaOutput) => ({
      amr: combineAmr([...context.amr, ...out.amr]),
      factors: [...context.factors, out.method as string],
    })),
    relayMfa: emit(({ context, event }) => ({ ...(event as MfaEffect), identityId: context.identityId as string }) as FlowEffect),
  },
}).createMachine({
  id: 'login',
  context: ({ input }) => ({
    ...input,
    identifier: input.identifier ?? null,
    identityId: null,
    passwordAttempts: 0,
    methods: [],
    risk: null,
    amr: [],
    factors: [],
    messages: [],
    error: null,
    reason: null,
    outcome: null,
    challenge: null,
  }),
  initial: 'start',
  states: {
    start: {
      meta: step('password'),
      always: [{ guard: 'passkeyFirst', target: 'startingPasskey' }, { target: 'awaitingPassword' }],
    },
    startingPasskey: {
      meta: step('webauthn'),
      invoke: {
        src: 'startPasskey',
        input: ({ context }) => ({ flowId: context.flowId }),
        onDone: { target: 'awaitingPasskey', actions: assign(({ event }) => ({ challenge: event.output })) },
        onError: { target: 'denied', actions: assign({ reason: 'SERVICE_UNAVAILABLE' }) },
      },
    },
    awaitingPasskey: {
      meta: step('webauthn'),
      tags: [TAG_AWAITING_INPUT],
      on: { webauthn: { target: 'verifyingPasskey', actions: 'clearMessages' } },
    },
    verifyingPasskey: {
      meta: step('webauthn'),
      invoke: {
        src: 'verifyPasskey',
        input: ({ context, event }) => ({ flowId: context.flowId, response: event.type === 'webauthn' ? event.response : {} }),
        onDone: [
          {
            guard: { type: 'passkeyOk', params: ({ event }) => event.output },
            target: 'assessingRisk',
            actions: { type: 'recordPasskeyOk', params: ({ event }) => event.output },
          },
          // Each try gets a fresh single-use challenge.
          { guard: 'passwordAttemptsLeft', target: 'startingPasskey', actions: ['recordPasskeyFailure', 'emitPasskeyFailure'] },
          { target: 'locked', actions: ['recordPasskeyFailure', 'emitPasskeyFailure', 'setLockedReason', 'emitLocked'] },
        ],
        onError: { target: 'startingPasskey', actions: assign(unavailable) },
      },
    },
    awaitingPassword: {
      meta: step('password'),
      tags: [TAG_AWAITING_INPUT],
      on: { password: { target: 'verifyingPassword', actions: ['clearMessages', 'rememberIdentifier'] } },
    },
    verifyingPassword: {
      meta: step('password'),
      invoke: {
        src: 'verifyPassword',
        // The password goes to the actor only; it is never written to context.
        input: ({ event }) =>
          event.type === 'password'
            ? { identifier: event.identifier, password: event.password }
            : { identifier: '', password: '' },
        onDone: [
          {
            guard: { type: 'passwordOk', params: ({ event }) => event.output },
            target: 'assessingRisk',
            actions: { type: 'recordPasswordOk', params: ({ event }) => event.output },
          },
          {
            guard: 'passwordAttemptsLeft',
            target: 'awaitingPassword',
            actions: [{ type: 'recordPasswordFailure', params: ({ event }) => event.output }, 'emitPasswordFailure'],
          },
          {
            target: 'locked',
            actions: [
              { type: 'recordPasswordFailure', params: ({ event }) => event.output },
              'emitPasswordFailure',
              'setLockedReason',
              'emitLocked',
            ],
          },
        ],
        // A broken dependency never lets anyone in; the client may try again.
        onError: { target: 'awaitingPassword', actions: assign(unavailable) },
      },
    },
    assessingRisk: {
      meta: step('password'),
      invoke: {
        src: 'scoreRisk',
        input: ({ context }) => ({
          flowId: context.flowId,
          identityId: context.identityId,
          deviceId: context.deviceId,
          ip: context.ip,
          userAgent: context.userAgent ?? null,
          rememberedDevice: context.rememberedDevice ?? null,
        }),
        onDone: { target: 'deciding', actions: { type: 'setRisk', params: ({ event }) => event.output } },
        onError: { target: 'deciding', actions: { type: 'setRisk', params: riskUnavailable } },
      },
      after: {
        riskTimeout: { target: 'deciding', actions: { type: 'setRisk', params: riskUnavailable } },
      },
    },
    deciding: {
      meta: step('password'),
      entry: 'emitRisk',
      always: [
        { guard: 'riskDeny', target: 'denied', actions: assign({ reason: 'RISK_DENIED' }) },
        { guard: and(['riskStepUp', 'alreadyMfa']), target: 'allowed' },
        { guard: 'riskStepUp', target: 'stepUp' },
        { guard: 'riskAllow', target: 'allowed' },
        // Anything else is not an allow.
        { target: 'stepUp' },
      ],
    },
    stepUp: {
      initial: 'checking',
      states: {
        checking: {
          meta: step('choose_method'),
          always: [
            { guard: 'hasMfa', target: 'challenging', actions: 'emitSteppedUp' },
            // Step-up is required but the user has no factor: refuse, never allow silently.
            { target: '#login.denied', actions: assign({ reason: 'MFA_REQUIRED_NO_FACTOR' }) },
          ],
        },
        // No step of its own: the presenter asks the delegate (the MFA machine) which step it is at.
        challenging: {
          tags: [TAG_DELEGATING],
          invoke: {
            id: 'mfa',
            src: 'mfa',
            input: ({ context }) => ({
              flowId: context.flowId,
              identityId: context.identityId as string,
              methods: offeredMethods(context.methods, context.risk),
              maxAttempts: context.maxMfaAttempts,
            }),
            onDone: [
              {
                guard: { type: 'mfaOk', params: ({ event }) => event.output },
                target: '#login.allowed',
                actions: { type: 'addFactor', params: ({ event }) => event.output },
              },
              { target: '#login.locked', actions: assign({ reason: 'MFA_LOCKED' }) },
            ],
          },
          on: {
            choose: { actions: forwardTo('mfa') },
            totp: { actions: forwardTo('mfa') },
            recovery_code: { actions: forwardTo('mfa') },
            code: { actions: forwardTo('mfa') },
            resend: { actions: forwardTo('mfa') },
            webauthn: { actions: forwardTo('mfa') },
            'mfa.challenge_failed': { actions: 'relayMfa' },
            'mfa.locked': { actions: 'relayMfa' },
            'mfa.code_sent': { actions: 'relayMfa' },
          },
        },
      },
    },
    allowed: { type: 'final', meta: step('done'), entry: [assign({ outcome: 'allowed' }), 'emitAllowed'] },
    denied: { type: 'final', meta: step('denied'), entry: [assign({ outcome: 'denied' }), 'emitDenied'] },
    locked: { type: 'final', meta: step('locked'), entry: assign({ outcome: 'locked' }) },
  },
  output: ({ context }) => ({
    outcome: context.outcome ?? 'locked',
    identityId: context.identityId,
    amr: context.amr,
    acr: acrFor(context.amr),
    factors: context.factors,
    reason: context.reason,
  }),
});
