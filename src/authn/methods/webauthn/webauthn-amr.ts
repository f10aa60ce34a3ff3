import type { DeviceType } from './webauthn-store.ts';

export type WebAuthnAmr = 'hwk' | 'swk' | 'user' | 'mfa';

/**
 * RFC 8176 `amr` values for one verified WebAuthn assertion.
 *
 * - `hwk` vs `swk`: a device-bound credential (BE flag clear: deviceType 'singleDevice', not
 *   backed up) never leaves its authenticator, so it is proof of possession of a hardware-secured
 *   key. A synced passkey ('multiDevice' or backed up) is copied to a cloud account and other
 *   devices: the key is not bound to one piece of hardware, so it counts as software-secured.
 *   Caveat: we accept attestation 'none', so "device-bound" is the authenticator's own BE claim.
 * - `user` and `mfa` only with UV. UV means the authenticator itself checked a PIN or biometric
 *   before signing: possession of the key plus knowledge or inherence in one gesture, which NIST
 *   SP 800-63B counts as a multi-factor cryptographic authenticator, hence `mfa`. We do not emit
 *   `pin`/`fpt` because the authenticator does not tell us which method it used. A presence-only
 *   touch (UP without UV) proves possession alone and gets neither `user` nor `mfa`.
 */
export function amrForWebAuthn(a: { userVerified: boolean; deviceType: DeviceType; backedUp: boolean }): WebAuthnAmr[] {
  const key: WebAuthnAmr = a.deviceType === 'singleDevice' && !a.backedUp ? 'hwk' : 'swk';
  return a.userVerified ? [key, 'user', 'mfa'] : [key];
}
