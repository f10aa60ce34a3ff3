import { transition } from 'xstate';
import { sessionMachine, type SessionContext, type SessionEvent, type SessionState } from '../../machines/session.machine.ts';

/** Apply one event to a session's stored state with the lifecycle machine (pure). */
export function evaluateSession(state: SessionState, ctx: SessionContext, event: SessionEvent): { state: SessionState; ctx: SessionContext } {
  const snapshot = sessionMachine.resolveState({ value: state, context: ctx });
  const [next] = transition(sessionMachine, snapshot, event);
  return { state: next.value as SessionState, ctx: next.context };
}
