import { describe, expect, it } from 'vitest';
import { amrForWebAuthn } from '../../src/authn/methods/webauthn/webauthn.ts';

describe('amrForWebAuthn (RFC 8176)', () => {
  it('a device-bound key with user verification: hwk, user, mfa', () => {
    expect(amrForWebAuthn({ userVerified: true, deviceType: 'singleDevice', backedUp: false })).toEqual(['hwk', 'user', 'mfa']);
  });

  it('a device-bound key touched without user verification proves possession only: hwk', () => {
    expect(amrForWebAuthn({ userVerified: false, deviceType: 'singleDevice', backedUp: false })).toEqual(['hwk']);
  });

  it('a synced passkey is a software-secured key: swk, user, mfa', () => {
    expect(amrForWebAuthn({ userVerified: true, deviceType: 'multiDevice', backedUp: true })).toEqual(['swk', 'user', 'mfa']);
  });

  it('a backup-eligible key that is not backed up yet can still be copied: swk', () => {
    expect(amrForWebAuthn({ userVerified: false, deviceType: 'multiDevice', backedUp: false })).toEqual(['swk']);
  });

  it('never claims hwk when the authenticator reports a backup, whatever the device type says', () => {
    expect(amrForWebAuthn({ userVerified: true, deviceType: 'singleDevice', backedUp: true })[0]).toBe('swk');
  });
});
