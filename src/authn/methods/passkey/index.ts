import { fromPromise } from 'xstate';
import type { PasskeyResult } from '../../../../machines/login.machine.ts';
import type { MethodDescriptor } from '../registry.ts';
import { WebAuthnEvent } from '../webauthn/index.ts';

/** Discoverable-credential sign-in (./passkey.ts builds it on the WebAuthn service). */
export interface PasskeyPort {
  start(flowId: string): Promise<Record<string, unknown>>;
  verify(flowId: string, response: Record<string, unknown>): Promise<PasskeyResult>;
}

const port = (p: PasskeyPort | undefined): PasskeyPort => {
  if (!p) throw new Error('passkeys are not configured');
  return p;
};

/**
 * Usernameless sign-in with a passkey: a first factor with no identifier or password. A
 * user-verified passkey is already phishing-resistant multi-factor proof (amr: ../webauthn/webauthn-amr.ts).
 */
export const passkey: MethodDescriptor = {
  id: 'passkey',
  kind: 'first',
  methods: ['passkey'],
  amr: ['hwk', 'swk', 'user', 'mfa'],
  events: [WebAuthnEvent],
  steps: [{ step: 'webauthn', challenge: true }],
  loginActors: (d) => ({
    startPasskey: fromPromise(async ({ input }) => port(d.passkey).start(input.flowId)),
    verifyPasskey: fromPromise(async ({ input }) => port(d.passkey).verify(input.flowId, input.response)),
  }),
};
