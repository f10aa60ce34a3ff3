import { assign, enqueueActions, fromPromise, setup } from 'xstate';
import { METHOD_STRENGTH, TAG_AWAITING_INPUT, type FlowErrorCode, type FlowMessage, type MfaEvent, type MfaMethod, type StepMeta } from './types.ts';

/**
 * The second-factor challenge, invoked by login (risk step-up) and run on its own for step-up of
 * a live session. choose → webauthn | totp | sms/email code | recovery code → verified |
 * retry (bounded, one budget across methods) | locked.
 */
export const MFA_MACHINE_VERSION = 4;

export interface MfaInput {
  flowId: string;
  identityId: string;
  methods: MfaMethod[];
  maxAttempts: number;
  /** True when this machine is the flow itself (step-up); false when invoked by login. */
  standalone?: boolean;
}

export type CodeChannel = 'sms' | 'email';

export interface MfaContext extends MfaInput {
  method: MfaMethod | null;
  verified: boolean;
  attempts: number;
  messages: FlowMessage[];
  /** Why the last event was not accepted (the route answers with it); null when it was. */
  error: FlowErrorCode | null;
  /** Public challenge data: WebAuthn request options, or the masked code destination. */
  challenge: Record<string, unknown> | null;
  /** amr values the verified factor proves. */
  proven: string[];
}

export type { MfaEvent };

export interface MfaOutput {
  ok: boolean;
  method: MfaMethod | null;
  amr: string[];
  reason?: string;
}

/** Effects the MFA machine reports (to its parent, or as emitted events when standalone). */
export type MfaEffect =
  | { type: 'mfa.challenge_failed'; method: MfaMethod; attempts: number; reason: string }
  | { type: 'mfa.locked'; method: MfaMethod }
  | { type: 'mfa.code_sent'; channel: CodeChannel };

export interface CodeCheckInput {
  identityId: string;
  code: string;
}
export interface SendCodeInput {
  flowId: string;
  identityId: string;
  channel: CodeChannel;
}
export type CodeVerdict = 'ok' | 'invalid' | 'expired' | 'locked';
export interface WebAuthnResult {
  ok: boolean;
  amr: string[];
  reason?: string;
}

type ErrorMessage = FlowMessage & { code: FlowErrorCode };
const msg = (code: FlowErrorCode, text: string): ErrorMessage => ({ code, text });
const step = (s: StepMeta['step']): StepMeta => ({ step: s });
const invalidCode = msg('MFA_CODE_INVALID', 'The code is incorrect or was already used.');

const channelOf = (m: MfaMethod | null): CodeChannel => (m === 'sms' ? 'sms' : 'email');

export const mfaMachine = setup({
  types: {} as { context: MfaContext; events: MfaEvent; input: MfaInput; output: MfaOutput; emitted: MfaEffect },
  actors: {
    verifyTotp: fromPromise<boolean, CodeCheckInput>(async () => {
      throw new Error('verifyTotp not provided');
    }),
    verifyRecoveryCode: fromPromise<boolean, CodeCheckInput>(async () => {
      throw new Error('verifyRecoveryCode not provided');
    }),
    sendCode: fromPromise<{ to: string }, SendCodeInput & { resend: boolean }>(async () => {
      throw new Error('sendCode not provided');
    }),
    verifyCode: fromPromise<CodeVerdict, { flowId: string; identityId: string; code: string }>(async () => {
      throw new Error('verifyCode not provided');
    }),
    startWebAuthn: fromPromise<Record<string, unknown>, { flowId: string; identityId: string }>(async () => {
      throw new Error('startWebAuthn not provided');
    }),
    verifyWebAuthn: fromPromise<WebAuthnResult, { flowId: string; identityId: string; response: Record<string, unknown> }>(async () => {
      throw new Error('verifyWebAuthn not provided');
    }),
  },
  guards: {
    onlyOne: ({ context }) => context.methods.length === 1,
    chose: ({ context, event }, p: { method: MfaMethod }) =>
      event.type === 'choose' && event.method === p.method && context.methods.includes(p.method),
    attemptsLeft: ({ context }) => context.attempts + 1 < context.maxAttempts,
    ok: (_, p: { ok: boolean }) => p.ok,
    verdict: (_, p: { is: CodeVerdict; verdict: CodeVerdict }) => p.is === p.verdict,
    invalidWithBudget: ({ context }, p: { verdict: CodeVerdict }) => p.verdict === 'invalid' && context.attempts + 1 < context.maxAttempts,
  },
  actions: {
    clearMessages: assign({ messages: [], error: null }),
    setMethod: assign((_, p: { method: MfaMethod }) => ({ method: p.method, challenge: null, messages: [], error: null })),
    countFailure: assign(({ context }, p: { message: ErrorMessage }) => ({ attempts: context.attempts + 1, messages: [p.message], error: p.message.code })),
    note: assign((_, p: { message: ErrorMessage }) => ({ messages: [p.message], error: p.message.code })),
    // Standalone (step-up flow): emit; invoked by login: tell the parent, which emits.
    report: enqueueActions(({ context, enqueue }, p: { effect: 'failed' | 'locked' | 'sent'; reason?: string }) => {
      const method = context.method ?? 'totp';
      const e: MfaEffect =
        p.effect === 'failed'
          ? { type: 'mfa.challenge_failed', method, attempts: context.attempts, reason: p.reason ?? 'MFA_CODE_INVALID' }
          : p.effect === 'locked'
            ? { type: 'mfa.locked', method }
            : { type: 'mfa.code_sent', channel: channelOf(context.method) };
      if (context.standalone) enqueue.emit(e);
      else enqueue.sendParent(e);
    }),
  },
}).createMachine({
  id: 'mfa',
  context: ({ input }) => ({
    ...input,
    methods: METHOD_STRENGTH.filter((m) => input.methods.includes(m)),
    standalone: input.standalone ?? false,
    method: null,
    verified: false,
    attempts: 0,
    messages: [],
    error: null,
    challenge: null,
    proven: [],
  }),
  initial: 'choosing',
  // Switching method is allowed from any prompt; the attempt budget is shared across methods.
  on: {
    choose: [
      { guard: { type: 'chose', params: { method: 'webauthn' } }, target: '.startingWebAuthn', actions: { type: 'setMethod', params: { method: 'webauthn' } } },
      { guard: { type: 'chose', params: { method: 'totp' } }, target: '.totp', actions: { type: 'setMethod', params: { method: 'totp' } } },
      { guard: { type: 'chose', params: { method: 'sms' } }, target: '.sendingCode', actions: { type: 'setMethod', params: { method: 'sms' } } },
      { guard: { type: 'chose', params: { method: 'email' } }, target: '.sendingCode', actions: { type: 'setMethod', params: { method: 'email' } } },
      { guard: { type: 'chose', params: { method: 'recovery_code' } }, target: '.recoveryCode', actions: { type: 'setMethod', params: { method: 'recovery_code' } } },
    ],
  },
  states: {
    choosing: {
      meta: step('choose_method'),
      tags: [TAG_AWAITING_INPUT],
      // With a single method there is nothing to choose.
      always: { guard: 'onlyOne', actions: enqueueActions(({ context, enqueue }) => enqueue.raise({ type: 'choose', method: context.methods[0] })) },
    },
    totp: {
      meta: step('totp'),
      tags: [TAG_AWAITING_INPUT],
      on: { totp: { target: 'verifyingTotp', actions: 'clearMessages' } },
    },
    verifyingTotp: {
      meta: step('totp'),
      invoke: {
        src: 'verifyTotp',
        input: ({ context, event }) => ({ identityId: context.identityId, code: event.type === 'totp' ? event.code : '' }),
        onDone: [
          { guard: { type: 'ok', params: ({ event }) => ({ ok: event.output }) }, target: 'verified', actions: assign({ proven: ['otp'] }) },
          { guard: 'attemptsLeft', target: 'totp', actions: [{ type: 'countFailure', params: { message: invalidCode } }, { type: 'report', params: { effect: 'failed' } }] },
          { target: 'locked', actions: [{ type: 'countFailure', params: { message: invalidCode } }, { type: 'report', params: { effect: 'failed' } }, { type: 'report', params: { effect: 'locked' } }] },
        ],
        onError: { target: 'totp', actions: { type: 'note', params: { message: msg('SERVICE_UNAVAILABLE', 'Try again later.') } } },
      },
    },
    recoveryCode: {
      meta: step('recovery_code'),
      tags: [TAG_AWAITING_INPUT],
      on: { recovery_code: { target: 'verifyingRecoveryCode', actions: 'clearMessages' } },
    },
    verifyingRecoveryCode: {
      meta: step('recovery_code'),
      invoke: {
        src: 'verifyRecoveryCode',
        input: ({ context, event }) => ({ identityId: context.identityId, code: event.type === 'recovery_code' ? event.code : '' }),
        onDone: [
          { guard: { type: 'ok', params: ({ event }) => ({ ok: event.output }) }, target: 'verified', actions: assign({ proven: ['lookup'] }) },
          { guard: 'attemptsLeft', target: 'recoveryCode', actions: [{ type: 'countFailure', params: { message: invalidCode } }, { type: 'report', params: { effect: 'failed' } }] },
          { target: 'locked', actions: [{ type: 'countFailure', params: { message: invalidCode } }, { type: 'report', params: { effect: 'failed' } }, { type: 'report', params: { effect: 'locked' } }] },
        ],
        onError: { target: 'recoveryCode', actions: { type: 'note', params: { message: msg('SERVICE_UNAVAILABLE', 'Try again later.') } } },
      },
    },
    sendingCode: {
      meta: step('code'),
      invoke: {
        src: 'sendCode',
        input: ({ context, event }) => ({
          flowId: context.flowId,
          identityId: context.identityId,
          channel: channelOf(context.method),
          resend: event.type === 'resend',
        }),
        onDone: {
          target: 'code',
          actions: [
            assign(({ context, event }) => ({ challenge: { channel: channelOf(context.method), to: event.output.to }, messages: [], error: null })),
            { type: 'report', params: { effect: 'sent' } },
          ],
        },
        // The provider is down or the resend came too soon: say so; never skip or fall back silently.
        onError: [
          {
            guard: ({ context }) => context.challenge !== null,
            target: 'code',
            actions: assign(({ event }) => codeFailure(event.error)),
          },
          { target: 'choosing', actions: assign(({ event }) => ({ ...codeFailure(event.error), method: null })) },
        ],
      },
    },
    code: {
      meta: step('code'),
      tags: [TAG_AWAITING_INPUT],
      on: {
        code: { target: 'verifyingCode', actions: 'clearMessages' },
        resend: { target: 'sendingCode' },
      },
    },
    verifyingCode: {
      meta: step('code'),
      invoke: {
        src: 'verifyCode',
        input: ({ context, event }) => ({ flowId: context.flowId, identityId: context.identityId, code: event.type === 'code' ? event.code : '' }),
        onDone: [
          {
            guard: { type: 'verdict', params: ({ event }) => ({ is: 'ok' as const, verdict: event.output }) },
            target: 'verified',
            // NIST 800-63B: email is not an out-of-band authenticator; `email` is internal and never counts as a factor.
            actions: assign(({ context }) => ({ proven: context.method === 'sms' ? ['sms'] : ['email'] })),
          },
          {
            guard: { type: 'verdict', params: ({ event }) => ({ is: 'expired' as const, verdict: event.output }) },
            target: 'code',
            actions: { type: 'note', params: { message: msg('MFA_CODE_EXPIRED', 'The code has expired; ask for a new one.') } },
          },
          {
            // A wrong code spends the flow's one budget; out of budget, the last branch locks.
            guard: { type: 'invalidWithBudget', params: ({ event }) => ({ verdict: event.output }) },
            target: 'code',
            actions: [{ type: 'countFailure', params: { message: invalidCode } }, { type: 'report', params: { effect: 'failed' } }],
          },
          { target: 'locked', actions: [{ type: 'countFailure', params: { message: invalidCode } }, { type: 'report', params: { effect: 'locked' } }] },
        ],
        onError: { target: 'code', actions: { type: 'note', params: { message: msg('SERVICE_UNAVAILABLE', 'Try again later.') } } },
      },
    },
    startingWebAuthn: {
      meta: step('webauthn'),
      invoke: {
        src: 'startWebAuthn',
        input: ({ context }) => ({ flowId: context.flowId, identityId: context.identityId }),
        onDone: { target: 'webauthn', actions: assign(({ event }) => ({ challenge: event.output })) },
        onError: { target: 'choosing', actions: { type: 'note', params: { message: msg('SERVICE_UNAVAILABLE', 'Try again later.') } } },
      },
    },
    webauthn: {
      meta: step('webauthn'),
      tags: [TAG_AWAITING_INPUT],
      on: { webauthn: { target: 'verifyingWebAuthn', actions: 'clearMessages' } },
    },
    verifyingWebAuthn: {
      meta: step('webauthn'),
      invoke: {
        src: 'verifyWebAuthn',
        input: ({ context, event }) => ({
          flowId: context.flowId,
          identityId: context.identityId,
          response: event.type === 'webauthn' ? event.response : {},
        }),
        onDone: [
          { guard: { type: 'ok', params: ({ event }) => ({ ok: event.output.ok }) }, target: 'verified', actions: assign(({ event }) => ({ proven: event.output.amr })) },
          // Each try gets a fresh single-use challenge.
          { guard: 'attemptsLeft', target: 'startingWebAuthn', actions: [{ type: 'countFailure', params: { message: msg('WEBAUTHN_FAILED', 'The security key could not be verified.') } }, { type: 'report', params: { effect: 'failed', reason: 'WEBAUTHN_FAILED' } }] },
          { target: 'locked', actions: [{ type: 'countFailure', params: { message: msg('WEBAUTHN_FAILED', 'The security key could not be verified.') } }, { type: 'report', params: { effect: 'failed', reason: 'WEBAUTHN_FAILED' } }, { type: 'report', params: { effect: 'locked' } }] },
        ],
        onError: { target: 'startingWebAuthn', actions: { type: 'note', params: { message: msg('SERVICE_UNAVAILABLE', 'Try again later.') } } },
      },
    },
    verified: { type: 'final', meta: step('done'), entry: assign({ verified: true }) },
    locked: { type: 'final', meta: step('locked') },
  },
  output: ({ context }) => ({
    ok: context.verified,
    method: context.method,
    amr: context.verified ? context.proven : [],
    reason: context.verified ? undefined : 'MFA_LOCKED',
  }),
});

/** A code-delivery failure as a flow message and error; the thrown error's `code` picks it. */
function codeFailure(err: unknown): { messages: FlowMessage[]; error: FlowErrorCode } {
  const code = (err as { code?: string } | undefined)?.code;
  const m =
    code === 'CODE_RESEND_TOO_SOON'
      ? msg(code, 'Wait a little before asking for another code.')
      : msg('DELIVERY_FAILED', 'The code could not be sent. Try again or choose another method.');
  return { messages: [m], error: m.code };
}
