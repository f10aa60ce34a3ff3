import type { UserService } from '../../../identity/users.ts';
import type { MfaMethod } from '../../../../machines/types.ts';
import type { PasskeyResult } from '../../../../machines/login.machine.ts';
import { amrForWebAuthn, type WebAuthnService } from '../webauthn/webauthn.ts';
import type { PasskeyPort } from './index.ts';

/** Passkey sign-in on the WebAuthn service: no identity is named, the credential names it. */
export function createPasskeyPort(deps: { webauthn: WebAuthnService; users: UserService; methodsOf: (identityId: string) => Promise<MfaMethod[]> }): PasskeyPort {
  const { webauthn, users } = deps;
  return {
    start: async (flowId: string) =>
      (await webauthn.authenticationOptions({ flowKey: flowId, identityId: null, userVerification: 'required' })) as unknown as Record<string, unknown>,
    /** A verified passkey of a disabled or locked account opens nothing. */
    async verify(flowId: string, response: Record<string, unknown>): Promise<PasskeyResult> {
      const r = await webauthn.authenticate({ flowKey: flowId, identityId: null, response: response as never });
      if (!r.ok) return { ok: false, identityId: null, amr: [], methods: [] };
      const user = await users.get(r.identityId);
      if (!user || user.status !== 'active' || user.locked) return { ok: false, identityId: null, amr: [], methods: [] };
      return { ok: true, identityId: r.identityId, amr: amrForWebAuthn(r), methods: await deps.methodsOf(r.identityId) };
    },
  };
}
