import { describe, expect, it } from 'vitest';
import { federatedAmr, upstreamProvesMfa } from '../../src/authn/federation/amr.ts';
import { issuerAllowed } from '../../src/authn/federation/settings.ts';
import type { ExternalAssertion } from '../../src/authn/federation/assertion.ts';

const NOW = 1_800_000_000;
const provider = { trust_upstream_mfa: true, mfa_amr_values: ['mfa', 'hwk'], mfa_acr_values: ['urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract'], mfa_max_age_seconds: 900 };
const a = (o: Partial<ExternalAssertion>): ExternalAssertion => ({
  providerId: 'p', protocol: 'oidc', issuer: 'https://idp', subject: 's', email: null, emailVerified: false, name: null, groups: [], upstreamAmr: [], upstreamAcr: null, authTime: NOW - 60, ...o,
});

describe('upstream amr/acr → local amr', () => {
  it('maps listed amr or acr values proven recently to fed + mfa when trusted', () => {
    expect(federatedAmr(provider, a({ upstreamAmr: ['pwd', 'hwk'] }), NOW)).toEqual(['fed', 'mfa']);
    expect(federatedAmr(provider, a({ upstreamAcr: 'urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract' }), NOW)).toEqual(['fed', 'mfa']);
  });
  it('gives fed only: untrusted provider, unlisted values, stale or unknown auth_time, auth_time in the future', () => {
    expect(federatedAmr({ ...provider, trust_upstream_mfa: false }, a({ upstreamAmr: ['mfa'] }), NOW)).toEqual(['fed']);
    expect(federatedAmr(provider, a({ upstreamAmr: ['pwd', 'otp'] }), NOW)).toEqual(['fed']);
    expect(federatedAmr(provider, a({ upstreamAmr: ['mfa'], authTime: NOW - 901 }), NOW)).toEqual(['fed']);
    expect(federatedAmr(provider, a({ upstreamAmr: ['mfa'], authTime: null }), NOW)).toEqual(['fed']);
    expect(federatedAmr(provider, a({ upstreamAmr: ['mfa'], authTime: NOW + 3600 }), NOW)).toEqual(['fed']);
  });
  it('records what the IdP claims whether or not it is trusted', () => {
    expect(upstreamProvesMfa({ ...provider }, a({ upstreamAmr: ['mfa'] }), NOW)).toBe(true);
  });
});

describe('issuer URLs', () => {
  it('allows https anywhere, plain http only for a loopback issuer outside production', () => {
    expect(issuerAllowed('https://login.example.com', true)).toBe(true);
    expect(issuerAllowed('http://127.0.0.1:4000', false)).toBe(true);
    expect(issuerAllowed('http://localhost:4000', false)).toBe(true);
    expect(issuerAllowed('http://127.0.0.1:4000', true)).toBe(false);
    expect(issuerAllowed('http://idp.example.com', false)).toBe(false);
    expect(issuerAllowed('http://127.0.0.1.nip.io', false)).toBe(false);
  });
});
