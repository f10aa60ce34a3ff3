import { assign, emit, forwardTo, fromPromise, setup } from 'xstate';
import { MFA_MACHINE_VERSION, mfaMachine, type MfaEffect, type MfaOutput } from './mfa.machine.ts';
import { offeredMethods, riskUnavailable } from './login.machine.ts';
import {
  combineAmr,
  failure,
  TAG_AWAITING_INPUT,
  TAG_DELEGATING,
  type FlowErrorCode,
  type FlowMessage,
  type MfaEvent,
  type MfaMethod,
  type RiskActorInput,
  type RiskOutcome,
  type StepMeta,
} from './types.ts';

/**
 * Account recovery (issue 12 item 3): the emailed single-use link → risk → the account's second
 * factor when it has one (the MFA machine as a child, as login uses it: recovery is never a way
 * around MFA; a recovery code counts) → a new password. Before the link is proven nothing about
 * the account is known to the flow, so its answers are the same whether the account exists.
 * awaitingLink → verifyingLink → assessingRisk (deadline; fails closed) → deciding →
 * secondFactor | awaitingPassword | denied → settingPassword → done; locked after too many tries.
 */
export const RECOVERY_MACHINE_VERSION = 1;
export const RECOVERY_FLOW_VERSION = RECOVERY_MACHINE_VERSION * 1000 + MFA_MACHINE_VERSION;

export interface RecoveryInput {
  flowId: string;
  maxLinkAttempts: number;
  maxMfaAttempts: number;
  riskTimeoutMs: number;
}

/** Who presented the link (set by the server on the event, never by the client). */
export interface Presenter {
  ip: string;
  deviceId: string | null;
  userAgent: string | null;
}

export type RecoveryEvent =
  | ({ type: 'link'; code: string } & Partial<Presenter>)
  | { type: 'password'; password: string }
  | MfaEvent
  | MfaEffect;

export interface LinkResult {
  ok: boolean;
  identityId: string | null;
  methods: MfaMethod[];
}

/** Refused by the password rules: `code` is the error registry's code, `message` says why. */
export type NewPasswordResult = { ok: true } | { ok: false; code: string; message: string };

export type RecoveryDenial = 'RISK_DENIED' | 'MFA_REQUIRED_NO_FACTOR';

export interface RecoveryContext extends RecoveryInput {
  identityId: string | null;
  presenter: Presenter | null;
  methods: MfaMethod[];
  linkAttempts: number;
  risk: RiskOutcome | null;
  amr: string[];
  factors: string[];
  messages: FlowMessage[];
  /** Why the last event was not accepted: a code of the error registry (the route answers with it). */
  error: FlowErrorCode | 'RECOVERY_LINK_INVALID' | (string & {}) | null;
  reason: RecoveryDenial | 'TOO_MANY_ATTEMPTS' | 'MFA_LOCKED' | null;
  outcome: RecoveryOutput['outcome'] | null;
}

export interface RecoveryOutput {
  outcome: 'recovered' | 'denied' | 'locked';
  identityId: string | null;
  factors: string[];
  reason: RecoveryContext['reason'];
}

/** What a recovery transition asks the service to record (audit, risk). */
export type RecoveryEffect =
  | { type: 'recovery.link_failed'; attempts: number }
  | { type: 'recovery.risk_decided'; identityId: string; risk: RiskOutcome }
  | { type: 'recovery.denied'; identityId: string | null; reason: string }
  | { type: 'recovery.locked'; identityId: string | null; reason: string }
  | (MfaEffect & { identityId: string });

const step = (s: StepMeta['step']): StepMeta => ({ step: s });

export const recoveryMachine = setup({
  types: {} as { context: RecoveryContext; events: RecoveryEvent; input: RecoveryInput; output: RecoveryOutput; emitted: RecoveryEffect },
  actors: {
    consumeLink: fromPromise<LinkResult, { flowId: string; code: string; deviceId: string | null }>(async () => {
      throw new Error('consumeLink not provided');
    }),
    scoreRisk: fromPromise<RiskOutcome, RiskActorInput>(async () => {
      throw new Error('scoreRisk not provided');
    }),
    mfa: mfaMachine,
    setNewPassword: fromPromise<NewPasswordResult, { flowId: string; identityId: string; password: string }>(async () => {
      throw new Error('setNewPassword not provided');
    }),
  },
  delays: { riskTimeout: ({ context }) => context.riskTimeoutMs },
  guards: {
    linkOk: (_, out: LinkResult) => out.ok && out.identityId !== null,
    linkAttemptsLeft: ({ context }) => context.linkAttempts + 1 < context.maxLinkAttempts,
    riskDeny: ({ context }) => context.risk?.decision === 'deny',
    riskAllow: ({ context }) => context.risk?.decision === 'allow',
    hasMfa: ({ context }) => context.methods.length > 0,
    mfaOk: (_, out: MfaOutput) => out.ok,
    passwordSet: (_, out: NewPasswordResult) => out.ok,
  },
  actions: {
    clearMessages: assign({ messages: [], error: null }),
    recordPresenter: assign({
      presenter: ({ event }) =>
        event.type === 'link' ? { ip: event.ip ?? '0.0.0.0', deviceId: event.deviceId ?? null, userAgent: event.userAgent ?? null } : null,
    }),
    // An email code goes to the mailbox that just received the link: it proves nothing more, so
    // it is neither offered nor counted as the account's second factor.
    recordLink: assign((_, out: LinkResult) => ({ identityId: out.identityId, methods: out.methods.filter((m) => m !== 'email'), amr: ['email'], factors: ['recovery_link'] })),
    linkFailed: assign(({ context }) => ({
      linkAttempts: context.linkAttempts + 1,
      messages: [{ code: 'RECOVERY_LINK_INVALID', text: 'This recovery link is not valid, was already used or has expired.' }],
      error: 'RECOVERY_LINK_INVALID' as const,
    })),
    emitLinkFailed: emit(({ context }) => ({ type: 'recovery.link_failed' as const, attempts: context.linkAttempts })),
    setRisk: assign((_, risk: RiskOutcome) => ({ risk })),
    emitRisk: emit(({ context }) => ({ type: 'recovery.risk_decided' as const, identityId: context.identityId as string, risk: context.risk as RiskOutcome })),
    emitDenied: emit(({ context }) => ({ type: 'recovery.denied' as const, identityId: context.identityId, reason: context.reason ?? 'RISK_DENIED' })),
    emitLocked: emit(({ context }) => ({ type: 'recovery.locked' as const, identityId: context.identityId, reason: context.reason ?? 'TOO_MANY_ATTEMPTS' })),
    addFactor: assign(({ context }, out: MfaOutput) => ({ amr: combineAmr([...context.amr, ...out.amr]), factors: [...context.factors, out.method as string] })),
    relayMfa: emit(({ context, event }) => ({ ...(event as MfaEffect), identityId: context.identityId as string }) as RecoveryEffect),
    passwordRejected: assign((_, out: NewPasswordResult) => {
      const code = out.ok ? 'VALIDATION_FAILED' : out.code;
      return { messages: [{ code, text: out.ok ? '' : out.message }], error: code };
    }),
  },
}).createMachine({
  id: 'recovery',
  context: ({ input }) => ({
    ...input,
    identityId: null,
    presenter: null,
    methods: [],
    linkAttempts: 0,
    risk: null,
    amr: [],
    factors: [],
    messages: [],
    error: null,
    reason: null,
    outcome: null,
  }),
  initial: 'awaitingLink',
  states: {
    awaitingLink: {
      meta: step('recovery_link'),
      tags: [TAG_AWAITING_INPUT],
      on: { link: { target: 'verifyingLink', actions: ['clearMessages', 'recordPresenter'] } },
    },
    verifyingLink: {
      meta: step('recovery_link'),
      invoke: {
        src: 'consumeLink',
        // The code goes to the actor only; it is never written to context.
        input: ({ context, event }) => ({ flowId: context.flowId, code: event.type === 'link' ? event.code : '', deviceId: context.presenter?.deviceId ?? null }),
        onDone: [
          { guard: { type: 'linkOk', params: ({ event }) => event.output }, target: 'assessingRisk', actions: { type: 'recordLink', params: ({ event }) => event.output } },
          { guard: 'linkAttemptsLeft', target: 'awaitingLink', actions: ['linkFailed', 'emitLinkFailed'] },
          { target: 'locked', actions: ['linkFailed', 'emitLinkFailed', assign({ reason: 'TOO_MANY_ATTEMPTS' }), 'emitLocked'] },
        ],
        onError: { target: 'awaitingLink', actions: assign(() => failure('SERVICE_UNAVAILABLE', 'Try again later.')) },
      },
    },
    assessingRisk: {
      meta: step('recovery_link'),
      invoke: {
        src: 'scoreRisk',
        input: ({ context }) => ({
          flowId: context.flowId,
          identityId: context.identityId,
          deviceId: context.presenter?.deviceId ?? null,
          ip: context.presenter?.ip ?? '0.0.0.0',
          userAgent: context.presenter?.userAgent ?? null,
        }),
        onDone: { target: 'deciding', actions: { type: 'setRisk', params: ({ event }) => event.output } },
        onError: { target: 'deciding', actions: { type: 'setRisk', params: riskUnavailable } },
      },
      after: { riskTimeout: { target: 'deciding', actions: { type: 'setRisk', params: riskUnavailable } } },
    },
    deciding: {
      meta: step('recovery_link'),
      entry: 'emitRisk',
      always: [
        { guard: 'riskDeny', target: 'denied', actions: assign({ reason: 'RISK_DENIED' }) },
        // Whatever the risk, an account with a second factor proves it: the link alone is one factor.
        { guard: 'hasMfa', target: 'secondFactor' },
        { guard: 'riskAllow', target: 'awaitingPassword' },
        // A risky recovery of an account with nothing else to prove: refused, never allowed silently.
        { target: 'denied', actions: assign({ reason: 'MFA_REQUIRED_NO_FACTOR' }) },
      ],
    },
    secondFactor: {
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
          { guard: { type: 'mfaOk', params: ({ event }) => event.output }, target: 'awaitingPassword', actions: { type: 'addFactor', params: ({ event }) => event.output } },
          { target: 'locked', actions: [assign({ reason: 'MFA_LOCKED' }), 'emitLocked'] },
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
    awaitingPassword: {
      meta: step('new_password'),
      tags: [TAG_AWAITING_INPUT],
      on: { password: { target: 'settingPassword', actions: 'clearMessages' } },
    },
    settingPassword: {
      meta: step('new_password'),
      invoke: {
        src: 'setNewPassword',
        // The password goes to the actor only.
        input: ({ context, event }) => ({ flowId: context.flowId, identityId: context.identityId as string, password: event.type === 'password' ? event.password : '' }),
        onDone: [
          { guard: { type: 'passwordSet', params: ({ event }) => event.output }, target: 'recovered' },
          { target: 'awaitingPassword', actions: { type: 'passwordRejected', params: ({ event }) => event.output } },
        ],
        onError: { target: 'awaitingPassword', actions: assign(() => failure('SERVICE_UNAVAILABLE', 'Try again later.')) },
      },
    },
    recovered: { type: 'final', meta: step('done'), entry: assign({ outcome: 'recovered' }) },
    denied: { type: 'final', meta: step('denied'), entry: [assign({ outcome: 'denied' }), 'emitDenied'] },
    locked: { type: 'final', meta: step('locked'), entry: assign({ outcome: 'locked' }) },
  },
  output: ({ context }) => ({
    outcome: context.outcome ?? 'locked',
    identityId: context.identityId,
    factors: context.factors,
    reason: context.reason,
  }),
});
