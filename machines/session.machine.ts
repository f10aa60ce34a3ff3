import { assign, setup } from 'xstate';

/**
 * The lifecycle of one session: active ⇄ warning → expired | revoked, and locked ⇄ active.
 * Evaluated per request with XState's pure `transition()` from a snapshot rebuilt from the
 * stored row (`machine.resolveState`), so the rules live here and the store only persists.
 * Times are epoch milliseconds carried by the events: nothing depends on timers.
 *
 * - ACTIVITY (an authenticated call) slides the idle window, never past the absolute expiry.
 * - CHECK (a status read such as /auth/me) evaluates without sliding: a polling page must not
 *   keep an unattended session alive. Inside the warning window before expiry it shows warning.
 * - The absolute lifetime can never be extended: nothing here moves `absoluteExpiresAt`.
 */
export const SESSION_MACHINE_VERSION = 1;

export interface SessionTimes {
  idleExpiresAt: number;
  absoluteExpiresAt: number;
  lastSeenAt: number;
}

export interface SessionContext extends SessionTimes {
  idleMs: number;
  warningMs: number;
  reason: string | null;
}

export type SessionEvent =
  | { type: 'ACTIVITY'; at: number }
  | { type: 'CHECK'; at: number }
  | { type: 'REVOKE'; reason: string }
  | { type: 'LOCK'; reason: string }
  | { type: 'UNLOCK'; at: number };

type At = { at: number };
const at = (e: SessionEvent): number => ('at' in e ? e.at : 0);

export const sessionMachine = setup({
  types: {} as { context: SessionContext; events: SessionEvent; input: SessionContext },
  guards: {
    expiredAt: ({ context }, p: At) => p.at >= context.absoluteExpiresAt || p.at >= context.idleExpiresAt,
    /** Inside the warning window before whichever expiry comes first (after sliding, for ACTIVITY). */
    warningAt: ({ context }, p: At & { slide: boolean }) => {
      const idle = p.slide ? Math.min(p.at + context.idleMs, context.absoluteExpiresAt) : context.idleExpiresAt;
      return Math.min(idle, context.absoluteExpiresAt) - p.at <= context.warningMs;
    },
  },
  actions: {
    slide: assign(({ context }, p: At) => ({
      lastSeenAt: p.at,
      idleExpiresAt: Math.max(context.idleExpiresAt, Math.min(p.at + context.idleMs, context.absoluteExpiresAt)),
    })),
    setReason: assign((_, p: { reason: string }) => ({ reason: p.reason })),
  },
}).createMachine({
  id: 'session',
  context: ({ input }) => input,
  initial: 'active',
  on: {
    REVOKE: { target: '.revoked', actions: { type: 'setReason', params: ({ event }) => ({ reason: event.reason }) } },
  },
  states: {
    active: {
      on: {
        ACTIVITY: [
          { guard: { type: 'expiredAt', params: ({ event }) => ({ at: at(event) }) }, target: 'expired' },
          {
            guard: { type: 'warningAt', params: ({ event }) => ({ at: at(event), slide: true }) },
            target: 'warning',
            actions: { type: 'slide', params: ({ event }) => ({ at: at(event) }) },
          },
          { actions: { type: 'slide', params: ({ event }) => ({ at: at(event) }) } },
        ],
        CHECK: [
          { guard: { type: 'expiredAt', params: ({ event }) => ({ at: at(event) }) }, target: 'expired' },
          { guard: { type: 'warningAt', params: ({ event }) => ({ at: at(event), slide: false }) }, target: 'warning' },
        ],
        LOCK: { target: 'locked', actions: { type: 'setReason', params: ({ event }) => ({ reason: event.reason }) } },
      },
    },
    warning: {
      on: {
        ACTIVITY: [
          { guard: { type: 'expiredAt', params: ({ event }) => ({ at: at(event) }) }, target: 'expired' },
          // Activity clears the warning unless only the absolute expiry is near (it cannot move).
          {
            guard: { type: 'warningAt', params: ({ event }) => ({ at: at(event), slide: true }) },
            actions: { type: 'slide', params: ({ event }) => ({ at: at(event) }) },
          },
          { target: 'active', actions: { type: 'slide', params: ({ event }) => ({ at: at(event) }) } },
        ],
        CHECK: [
          { guard: { type: 'expiredAt', params: ({ event }) => ({ at: at(event) }) }, target: 'expired' },
          { guard: { type: 'warningAt', params: ({ event }) => ({ at: at(event), slide: false }) } },
          { target: 'active' },
        ],
        LOCK: { target: 'locked', actions: { type: 'setReason', params: ({ event }) => ({ reason: event.reason }) } },
      },
    },
    /** A security event froze the session: every use is refused until an administrator unlocks it. */
    locked: {
      on: {
        UNLOCK: [
          { guard: { type: 'expiredAt', params: ({ event }) => ({ at: at(event) }) }, target: 'expired' },
          { target: 'active', actions: assign({ reason: null }) },
        ],
        CHECK: { guard: { type: 'expiredAt', params: ({ event }) => ({ at: at(event) }) }, target: 'expired' },
        ACTIVITY: { guard: { type: 'expiredAt', params: ({ event }) => ({ at: at(event) }) }, target: 'expired' },
      },
    },
    expired: { type: 'final' },
    revoked: { type: 'final' },
  },
});

export type SessionState = 'active' | 'warning' | 'locked' | 'expired' | 'revoked';
