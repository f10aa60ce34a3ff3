import { assign, fromPromise, sendParent, setup } from 'xstate';
import { METHOD_STRENGTH, TAG_AWAITING_INPUT, type FlowMessage, type MfaMethod } from './types.ts';

/**
 * The second-factor challenge, used by login (step-up) and later by step-up of a live session.
 * choose → totp | recovery_code → verified | retry (bounded) | locked.
 */
export const MFA_MACHINE_VERSION = 1;

export interface MfaInput {
  identityId: string;
  methods: MfaMethod[];
  maxAttempts: number;
}

export interface MfaContext extends MfaInput {
  method: MfaMethod | null;
  verified: boolean;
  attempts: number;
  messages: FlowMessage[];
}

export type MfaEvent =
  | { type: 'choose'; method: MfaMethod }
  | { type: 'totp'; code: string }
  | { type: 'recovery_code'; code: string };

export interface MfaOutput {
  ok: boolean;
  method: MfaMethod | null;
  /** amr values this factor proves. */
  amr: string[];
  reason?: string;
}

export interface CodeCheckInput {
  identityId: string;
  code: string;
}

const invalidCode: FlowMessage = { code: 'MFA_CODE_INVALID', text: 'The code is incorrect or was already used.' };

export const mfaMachine = setup({
  types: {} as { context: MfaContext; events: MfaEvent; input: MfaInput; output: MfaOutput },
  actors: {
    verifyTotp: fromPromise<boolean, CodeCheckInput>(async () => {
      throw new Error('verifyTotp not provided');
    }),
    verifyRecoveryCode: fromPromise<boolean, CodeCheckInput>(async () => {
      throw new Error('verifyRecoveryCode not provided');
    }),
  },
  guards: {
    onlyTotp: ({ context }) => context.methods.length === 1 && context.methods[0] === 'totp',
    onlyRecovery: ({ context }) => context.methods.length === 1 && context.methods[0] === 'recovery_code',
    chosenTotp: ({ context, event }) =>
      event.type === 'choose' && event.method === 'totp' && context.methods.includes('totp'),
    chosenRecovery: ({ context, event }) =>
      event.type === 'choose' && event.method === 'recovery_code' && context.methods.includes('recovery_code'),
    attemptsLeft: ({ context }) => context.attempts + 1 < context.maxAttempts,
    codeOk: (_, p: { ok: boolean }) => p.ok,
  },
  actions: {
    clearMessages: assign({ messages: [] }),
    countFailure: assign({ attempts: ({ context }) => context.attempts + 1, messages: [invalidCode] }),
    reportFailure: sendParent(({ context }) => ({
      type: 'mfa.challenge_failed',
      method: context.method,
      attempts: context.attempts,
    })),
    reportLocked: sendParent(({ context }) => ({ type: 'mfa.locked', method: context.method })),
  },
}).createMachine({
  id: 'mfa',
  context: ({ input }) => ({
    ...input,
    methods: METHOD_STRENGTH.filter((m) => input.methods.includes(m)),
    method: null,
    verified: false,
    attempts: 0,
    messages: [],
  }),
  initial: 'choosing',
  // Switching method is allowed from any prompt; the attempt budget is shared across methods.
  on: {
    choose: [
      { guard: 'chosenTotp', target: '.totp', reenter: true },
      { guard: 'chosenRecovery', target: '.recoveryCode', reenter: true },
    ],
  },
  states: {
    choosing: {
      tags: [TAG_AWAITING_INPUT],
      always: [
        { guard: 'onlyTotp', target: 'totp' },
        { guard: 'onlyRecovery', target: 'recoveryCode' },
      ],
    },
    totp: {
      tags: [TAG_AWAITING_INPUT],
      entry: assign({ method: 'totp' as const }),
      on: { totp: { target: 'verifyingTotp', actions: 'clearMessages' } },
    },
    verifyingTotp: {
      invoke: {
        src: 'verifyTotp',
        input: ({ context, event }) => ({
          identityId: context.identityId,
          code: event.type === 'totp' ? event.code : '',
        }),
        onDone: [
          { guard: { type: 'codeOk', params: ({ event }) => ({ ok: event.output }) }, target: 'verified' },
          { guard: 'attemptsLeft', target: 'totp', actions: ['countFailure', 'reportFailure'] },
          { target: 'locked', actions: ['countFailure', 'reportFailure', 'reportLocked'] },
        ],
        onError: [
          { guard: 'attemptsLeft', target: 'totp', actions: ['countFailure', 'reportFailure'] },
          { target: 'locked', actions: ['countFailure', 'reportFailure', 'reportLocked'] },
        ],
      },
    },
    recoveryCode: {
      tags: [TAG_AWAITING_INPUT],
      entry: assign({ method: 'recovery_code' as const }),
      on: { recovery_code: { target: 'verifyingRecoveryCode', actions: 'clearMessages' } },
    },
    verifyingRecoveryCode: {
      invoke: {
        src: 'verifyRecoveryCode',
        input: ({ context, event }) => ({
          identityId: context.identityId,
          code: event.type === 'recovery_code' ? event.code : '',
        }),
        onDone: [
          { guard: { type: 'codeOk', params: ({ event }) => ({ ok: event.output }) }, target: 'verified' },
          { guard: 'attemptsLeft', target: 'recoveryCode', actions: ['countFailure', 'reportFailure'] },
          { target: 'locked', actions: ['countFailure', 'reportFailure', 'reportLocked'] },
        ],
        onError: [
          { guard: 'attemptsLeft', target: 'recoveryCode', actions: ['countFailure', 'reportFailure'] },
          { target: 'locked', actions: ['countFailure', 'reportFailure', 'reportLocked'] },
        ],
      },
    },
    verified: { type: 'final', entry: assign({ verified: true }) },
    locked: { type: 'final' },
  },
  output: ({ context }) => {
    const ok = context.verified;
    const amr = !ok ? [] : context.method === 'totp' ? ['otp'] : ['lookup'];
    return { ok, method: context.method, amr, reason: ok ? undefined : 'MFA_LOCKED' };
  },
});
