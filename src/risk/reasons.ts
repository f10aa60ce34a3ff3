/**
 * Every reason code a risk decision can carry, in words for two audiences: the analyst (who may
 * see the figures behind a signal) and the person signing in (who must learn why a second
 * factor is asked without learning how to dodge the check — no thresholds, lists or counts).
 *
 * The shape of this module is a contract for the explanation API and the back-test reports:
 * add codes, do not rename or remove them (stored decisions name them forever).
 */

export type ReasonDirection = 'risk' | 'trust';

/** Figures the analyst text may quote; every field optional, taken from Signals.details. */
export interface ReasonDetails {
  accountFailures?: number;
  ipFailures?: number;
  speedKmh?: number | null;
  distanceKm?: number | null;
  deniedCidr?: string | null;
  allowedCidr?: string | null;
  asn?: number | null;
  org?: string | null;
  connectionType?: string | null;
  prefix?: string | null;
  country?: string | null;
  ipAccounts?: number;
  subnetAccounts?: number;
  deviceAccounts?: number;
  ipFailedAccounts?: number;
  subnetFailedAccounts?: number;
  velocityWindowSeconds?: number;
  failureWindowSeconds?: number;
  [key: string]: unknown;
}

export interface ReasonEntry {
  direction: ReasonDirection;
  /** One sentence for a security analyst; may quote details. */
  analyst(details: ReasonDetails): string;
  /** One plain sentence for the person signing in; never reveals signal internals. */
  user: string;
}

const n = (v: unknown, fallback = '?'): string => (typeof v === 'number' && Number.isFinite(v) ? String(v) : fallback);
const window = (s: unknown): string => {
  if (typeof s !== 'number' || !Number.isFinite(s)) return 'the window';
  if (s % 86400 === 0) return s === 86400 ? 'the last 24 hours' : `the last ${s / 86400} days`;
  if (s % 3600 === 0) return s === 3600 ? 'the last hour' : `the last ${s / 3600} hours`;
  return `the last ${Math.round(s / 60)} minutes`;
};
const net = (d: ReasonDetails): string =>
  [d.asn ? `AS${d.asn}` : null, d.org ? `(${d.org})` : null].filter(Boolean).join(' ') || 'an unknown network';

const DEVICE_USER = "We don't recognise this device.";
const NETWORK_USER = "You're signing in from a network or place we haven't seen you use before.";
const PROTECT_USER = 'We noticed unusual sign-in activity and want to make sure it is you.';

export const REASONS = {
  // ---- risk ----
  NEW_DEVICE: {
    direction: 'risk',
    analyst: () => 'This device has never completed a sign-in to this account.',
    user: DEVICE_USER,
  },
  NEW_NETWORK: {
    direction: 'risk',
    analyst: (d) => `The account has never signed in from this network (${d.prefix ?? 'unknown prefix'}, ${net(d)}).`,
    user: NETWORK_USER,
  },
  NEW_DEVICE_NEW_NETWORK: {
    direction: 'risk',
    analyst: (d) => `A device new to this account on a network the account has never used (${d.prefix ?? 'unknown prefix'}, ${net(d)}).`,
    user: DEVICE_USER,
  },
  NEW_COUNTRY: {
    direction: 'risk',
    analyst: (d) => `First sign-in from ${d.country ?? 'this country'} for this account.`,
    user: "You're signing in from a country we haven't seen you use before.",
  },
  IMPOSSIBLE_TRAVEL: {
    direction: 'risk',
    analyst: (d) =>
      // Snapshots from before distanceKm was recorded carry the speed only.
      `Since the last located sign-in the account would have travelled ${typeof d.distanceKm === 'number' ? `${d.distanceKm} km ` : ''}at ${n(d.speedKmh)} km/h (beyond the GeoIP accuracy of both fixes).`,
    user: "This sign-in comes from far away from where you signed in recently.",
  },
  HOSTING_NETWORK: {
    direction: 'risk',
    analyst: (d) => `The address belongs to a hosting / cloud provider (${net(d)}) the account has never used.`,
    user: NETWORK_USER,
  },
  ANONYMIZING_NETWORK: {
    direction: 'risk',
    analyst: (d) => `The address belongs to a VPN or proxy service (${net(d)}) the account has never used.`,
    user: NETWORK_USER,
  },
  TOR_EXIT: {
    direction: 'risk',
    analyst: () => 'The address is a listed Tor exit node.',
    user: PROTECT_USER,
  },
  SUSPICIOUS_IP: {
    direction: 'risk',
    analyst: (d) => `The address is inside the deny-listed range ${d.deniedCidr ?? '(unknown)'}.`,
    user: PROTECT_USER,
  },
  FAILED_ATTEMPTS: {
    direction: 'risk',
    analyst: (d) =>
      `${n(d.accountFailures, '0')} failed attempts on this account and ${n(d.ipFailures, '0')} from this address in ${window(d.failureWindowSeconds)}.`,
    user: 'There were several unsuccessful attempts to sign in to your account recently.',
  },
  PASSWORD_SPRAY: {
    direction: 'risk',
    analyst: (d) =>
      `Failed passwords on ${n(d.ipFailedAccounts, '0')} accounts from this address and ${n(d.subnetFailedAccounts, '0')} from its network prefix in ${window(d.velocityWindowSeconds)}, from devices new to those accounts.`,
    user: PROTECT_USER,
  },
  IP_VELOCITY: {
    direction: 'risk',
    analyst: (d) =>
      `${n(d.ipAccounts, '0')} other accounts were tried from this address in ${window(d.velocityWindowSeconds)} from devices new to them.`,
    user: PROTECT_USER,
  },
  SUBNET_VELOCITY: {
    direction: 'risk',
    analyst: (d) =>
      `${n(d.subnetAccounts, '0')} other accounts were tried from ${d.prefix ?? 'this network prefix'} in ${window(d.velocityWindowSeconds)} from devices new to them.`,
    user: PROTECT_USER,
  },
  DEVICE_VELOCITY: {
    direction: 'risk',
    analyst: (d) =>
      `This device id was used on ${n(d.deviceAccounts, '0')} other accounts it was new to in ${window(d.velocityWindowSeconds)} (one browser profile working through accounts).`,
    user: DEVICE_USER,
  },
  RISK_UNAVAILABLE: {
    direction: 'risk',
    analyst: () => 'The risk engine did not answer in time; the flow failed closed to a step-up.',
    user: 'We want to make sure it is you.',
  },
  // ---- outcomes the login flow appends to a stored event (not signals; listed so every stored code explains) ----
  INVALID_CREDENTIALS: {
    direction: 'risk',
    analyst: () => 'Wrong identifier or password.',
    user: 'The email or password is not right.',
  },
  TOO_MANY_ATTEMPTS: {
    direction: 'risk',
    analyst: () => 'Locked after repeated wrong passwords.',
    user: 'Too many unsuccessful attempts. Try again later.',
  },
  WEBAUTHN_FAILED: {
    direction: 'risk',
    analyst: () => 'The security key or passkey assertion did not verify.',
    user: 'The security key could not be verified.',
  },
  SERVICE_UNAVAILABLE: {
    direction: 'risk',
    analyst: () => 'A dependency failed during the sign-in; it failed closed.',
    user: 'Something went wrong on our side. Try again later.',
  },
  RISK_DENY: {
    direction: 'risk',
    analyst: () => 'The risk score reached the policy’s deny threshold.',
    user: 'We could not confirm it is you, so this sign-in was refused.',
  },
  MFA_REQUIRED_NO_FACTOR: {
    direction: 'risk',
    analyst: () => 'A second factor was required but the account has none enrolled.',
    user: 'This sign-in needs a second factor, and your account has none set up.',
  },
  MFA_LOCKED: {
    direction: 'risk',
    analyst: () => 'Locked after repeated wrong second-factor codes.',
    user: 'Too many unsuccessful attempts. Try again later.',
  },
  MFA_CODE_INVALID: {
    direction: 'risk',
    analyst: () => 'A wrong second-factor code was entered.',
    user: 'That code is not right.',
  },
  // ---- trust ----
  KNOWN_DEVICE: {
    direction: 'trust',
    analyst: () => 'This device has completed a sign-in to this account before.',
    user: 'We recognise this device.',
  },
  KNOWN_NETWORK: {
    direction: 'trust',
    analyst: (d) => `The account has signed in from this network before (${d.prefix ?? 'unknown prefix'}, ${net(d)}).`,
    user: 'You have signed in from this network before.',
  },
  ALLOWED_NETWORK: {
    direction: 'trust',
    analyst: (d) => `The address is inside the allow-listed egress ${d.allowedCidr ?? '(unknown)'}.`,
    user: 'You are signing in from a trusted network.',
  },
  REMEMBERED_DEVICE: {
    direction: 'trust',
    analyst: (d) =>
      d.rememberedOverruled === true
        ? 'The device presented a remembered-device token of this account, but the attempt scores a deny without it: it was not counted.'
        : 'The device presented a live remembered-device token of this account (set after a passed step-up).',
    user: 'You chose to remember this device.',
  },
  NO_SIGNAL: {
    direction: 'trust',
    analyst: () => 'No risk signal fired for this attempt.',
    user: 'Nothing unusual about this sign-in.',
  },
} as const satisfies Record<string, ReasonEntry>;

export type ReasonCode = keyof typeof REASONS;

export const REASON_CODES = Object.keys(REASONS) as ReasonCode[];

export const isReasonCode = (code: string): code is ReasonCode => Object.hasOwn(REASONS, code);

/**
 * Texts for one code. A code this build does not know (a reason appended by the flow, such as
 * MFA_LOCKED, or one from a newer build) gets neutral texts instead of an error, so explaining an
 * old decision never fails.
 */
export function describeReason(code: string, details: ReasonDetails = {}): { code: string; direction: ReasonDirection; analyst: string; user: string } {
  if (isReasonCode(code)) {
    const e: ReasonEntry = REASONS[code];
    return { code, direction: e.direction, analyst: e.analyst(details), user: e.user };
  }
  return { code, direction: 'risk', analyst: `Reason ${code}.`, user: 'We want to make sure it is you.' };
}
