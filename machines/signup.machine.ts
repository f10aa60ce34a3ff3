import { assign, emit, fromPromise, setup } from 'xstate';
import { failure, TAG_AWAITING_INPUT, type FlowErrorCode, type FlowMessage, type StepMeta } from './types.ts';

/**
 * Self-service sign-up with email verification.
 * details → registering → awaitingCode ⇄ verifying | resending → verified; denied (risk);
 * locked (too many wrong codes).
 *
 * The answer after `registering` is the same whether the address was free (a new, unverified
 * identity and a code to the address) or already had an account (a notice to its owner and no
 * code): the flow asks for a code either way, and in the second case no code can ever match.
 * Bump the version when behaviour changes; flows under way expire rather than resume.
 */
export const SIGNUP_MACHINE_VERSION = 1;

export interface SignupInput {
  flowId: string;
  deviceId: string | null;
  ip: string;
  userAgent?: string | null;
}

export interface RegisterInput {
  flowId: string;
  email: string;
  password: string;
  displayName: string | null;
  deviceId: string | null;
  ip: string;
  userAgent: string | null;
}

/** The risk as the client may see it (no score, no signals). */
export interface SignupRisk {
  level: 'low' | 'medium' | 'high';
  reasons: string[];
}

export type RegisterResult =
  /** A code went to the address (new account), or a notice went to its owner (existing one): the same to the client. */
  | { status: 'accepted'; challenge: { channel: 'email'; to: string }; identityId: string | null; risk: SignupRisk | null }
  | { status: 'refused'; error: Extract<FlowErrorCode, 'PASSWORD_REJECTED' | 'EMAIL_DOMAIN_NOT_ALLOWED' | 'EMAIL_DISPOSABLE'>; text: string; rejection?: { reasons: string[]; minLength: number } | null }
  | { status: 'denied'; risk: SignupRisk };

export type CodeVerdict = 'ok' | 'invalid' | 'expired' | 'locked';
export type ResendResult = { ok: true } | { ok: false; error: Extract<FlowErrorCode, 'CODE_RESEND_TOO_SOON' | 'DELIVERY_FAILED'>; retryAfter?: number };

export type SignupEvent =
  | { type: 'signup'; email: string; password: string; displayName?: string }
  | { type: 'code'; code: string }
  | { type: 'resend' };

export type SignupEffect =
  | { type: 'signup.requested'; identityId: string | null; risk: SignupRisk | null }
  | { type: 'signup.denied'; risk: SignupRisk }
  | { type: 'email.verified'; identityId: string | null }
  | { type: 'email.verification_failed'; identityId: string | null; verdict: CodeVerdict };

export interface SignupContext extends SignupInput {
  /** Server-side only: set when this flow created the identity (never when the address was taken). */
  identityId: string | null;
  challenge: { channel: 'email'; to: string } | null;
  risk: SignupRisk | null;
  rejection: { reasons: string[]; minLength: number } | null;
  retryAfter: number | null;
  messages: FlowMessage[];
  error: FlowErrorCode | 'MFA_CODE_LOCKED' | 'SIGNUP_DENIED' | null;
  outcome: 'verified' | 'denied' | 'locked' | null;
}

export interface SignupOutput {
  outcome: 'verified' | 'denied' | 'locked';
  identityId: string | null;
}

const step = (s: StepMeta['step']): StepMeta => ({ step: s });

export const signupMachine = setup({
  types: {} as { context: SignupContext; events: SignupEvent; input: SignupInput; output: SignupOutput; emitted: SignupEffect },
  actors: {
    register: fromPromise<RegisterResult, RegisterInput>(async () => {
      throw new Error('register not provided');
    }),
    verifyCode: fromPromise<CodeVerdict, { flowId: string; identityId: string | null; code: string }>(async () => {
      throw new Error('verifyCode not provided');
    }),
    resendCode: fromPromise<ResendResult, { flowId: string; identityId: string | null }>(async () => {
      throw new Error('resendCode not provided');
    }),
  },
  guards: {
    accepted: (_, r: RegisterResult) => r.status === 'accepted',
    refused: (_, r: RegisterResult) => r.status === 'refused',
    verdictIs: (_, p: { verdict: CodeVerdict; want: CodeVerdict }) => p.verdict === p.want,
    resent: (_, r: ResendResult) => r.ok,
  },
  actions: {
    clearMessages: assign({ messages: [], error: null, rejection: null, retryAfter: null }),
  },
}).createMachine({
  id: 'signup',
  context: ({ input }) => ({
    ...input,
    identityId: null,
    challenge: null,
    risk: null,
    rejection: null,
    retryAfter: null,
    messages: [],
    error: null,
    outcome: null,
  }),
  initial: 'details',
  output: ({ context }) => ({ outcome: context.outcome ?? 'denied', identityId: context.identityId }),
  states: {
    details: {
      meta: step('signup'),
      tags: [TAG_AWAITING_INPUT],
      on: { signup: { target: 'registering', actions: 'clearMessages' } },
    },
    registering: {
      meta: step('signup'),
      invoke: {
        src: 'register',
        // The password goes to the actor only; it is never written to context.
        input: ({ context, event }) => ({
          flowId: context.flowId,
          email: event.type === 'signup' ? event.email : '',
          password: event.type === 'signup' ? event.password : '',
          displayName: event.type === 'signup' ? (event.displayName ?? null) : null,
          deviceId: context.deviceId,
          ip: context.ip,
          userAgent: context.userAgent ?? null,
        }),
        onDone: [
          {
            guard: { type: 'accepted', params: ({ event }) => event.output },
            target: 'awaitingCode',
            actions: [
              assign(({ event }) => {
                const r = event.output as Extract<RegisterResult, { status: 'accepted' }>;
                return { identityId: r.identityId, challenge: r.challenge, risk: r.risk };
              }),
              emit(({ context }) => ({ type: 'signup.requested' as const, identityId: context.identityId, risk: context.risk })),
            ],
          },
          {
            guard: { type: 'refused', params: ({ event }) => event.output },
            target: 'details',
            actions: assign(({ event }) => {
              const r = event.output as Extract<RegisterResult, { status: 'refused' }>;
              return { ...failure(r.error, r.text), rejection: r.rejection ?? null };
            }),
          },
          {
            target: 'denied',
            actions: [
              assign(({ event }) => ({ risk: (event.output as Extract<RegisterResult, { status: 'denied' }>).risk, outcome: 'denied' as const, error: 'SIGNUP_DENIED' as const })),
              emit(({ context }) => ({ type: 'signup.denied' as const, risk: context.risk as SignupRisk })),
            ],
          },
        ],
        onError: { target: 'details', actions: assign(() => failure('SERVICE_UNAVAILABLE', 'Sign-up is not possible right now; try again later.')) },
      },
    },
    awaitingCode: {
      meta: step('code'),
      tags: [TAG_AWAITING_INPUT],
      on: {
        code: { target: 'verifying', actions: 'clearMessages' },
        resend: { target: 'resending', actions: 'clearMessages' },
      },
    },
    resending: {
      meta: step('code'),
      invoke: {
        src: 'resendCode',
        input: ({ context }) => ({ flowId: context.flowId, identityId: context.identityId }),
        onDone: [
          { guard: { type: 'resent', params: ({ event }) => event.output }, target: 'awaitingCode' },
          {
            target: 'awaitingCode',
            actions: assign(({ event }) => {
              const r = event.output as Extract<ResendResult, { ok: false }>;
              return { ...failure(r.error, r.error === 'DELIVERY_FAILED' ? 'The message could not be sent; try again.' : 'Wait a little before asking for another code.'), retryAfter: r.retryAfter ?? null };
            }),
          },
        ],
        onError: { target: 'awaitingCode', actions: assign(() => failure('SERVICE_UNAVAILABLE', 'Try again later.')) },
      },
    },
    verifying: {
      meta: step('code'),
      invoke: {
        src: 'verifyCode',
        input: ({ context, event }) => ({ flowId: context.flowId, identityId: context.identityId, code: event.type === 'code' ? event.code : '' }),
        onDone: [
          {
            guard: { type: 'verdictIs', params: ({ event }) => ({ verdict: event.output, want: 'ok' as const }) },
            target: 'verified',
            actions: [assign({ outcome: 'verified' as const, challenge: null }), emit(({ context }) => ({ type: 'email.verified' as const, identityId: context.identityId }))],
          },
          {
            guard: { type: 'verdictIs', params: ({ event }) => ({ verdict: event.output, want: 'locked' as const }) },
            target: 'locked',
            actions: [
              assign({ outcome: 'locked' as const, error: 'MFA_CODE_LOCKED' as const, challenge: null }),
              emit(({ context }) => ({ type: 'email.verification_failed' as const, identityId: context.identityId, verdict: 'locked' as const })),
            ],
          },
          {
            guard: { type: 'verdictIs', params: ({ event }) => ({ verdict: event.output, want: 'expired' as const }) },
            target: 'awaitingCode',
            actions: [
              assign(() => failure('MFA_CODE_EXPIRED', 'The code has expired; ask for a new one.')),
              emit(({ context }) => ({ type: 'email.verification_failed' as const, identityId: context.identityId, verdict: 'expired' as const })),
            ],
          },
          {
            target: 'awaitingCode',
            actions: [
              assign(() => failure('MFA_CODE_INVALID', 'The code is incorrect or was already used.')),
              emit(({ context }) => ({ type: 'email.verification_failed' as const, identityId: context.identityId, verdict: 'invalid' as const })),
            ],
          },
        ],
        onError: { target: 'awaitingCode', actions: assign(() => failure('SERVICE_UNAVAILABLE', 'Try again later.')) },
      },
    },
    verified: { meta: step('done'), type: 'final' },
    denied: { meta: step('denied'), type: 'final' },
    locked: { meta: step('locked'), type: 'final' },
  },
});
