/**
 * Plain-language explanations of risk decisions: one text for the analyst (with the numbers
 * behind each signal) and one for the person signing in (no numbers, nothing an attacker could
 * tune against).
 *
 * Texts come from a reason catalog. Today that is FALLBACK_REASONS below; r-engine's catalog
 * (src/risk/reasons.ts) becomes the source by changing `CATALOG` — entries missing from it still
 * fall back here, and unknown codes get a generic text rather than disappearing.
 */

/** Signal details as recorded with a login event; every member optional (old rows, new signals). */
export type ReasonDetails = Record<string, unknown>;

export interface ReasonEntry {
  /** For analysts; may use the signal's details (speeds, counts, networks). */
  analyst: string | ((details: ReasonDetails, ctx: ExplainContext) => string);
  /** For the person signing in: short, calm, no figures. */
  user: string;
}

export type ReasonCatalog = Readonly<Record<string, ReasonEntry>>;

export interface ExplainContext {
  country?: string | null;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

/** Texts for the reason codes the engine and the login flow produce today. */
export const FALLBACK_REASONS: ReasonCatalog = Object.freeze({
  NEW_DEVICE: {
    analyst: 'new device: this user never signed in successfully from it',
    user: 'We did not recognise this device.',
  },
  NEW_COUNTRY: {
    analyst: (_d, ctx) => (ctx.country ? `first sign-in from ${ctx.country}, a country this user never signed in from` : 'a country this user never signed in from'),
    user: 'This sign-in comes from a place you have not signed in from before.',
  },
  IMPOSSIBLE_TRAVEL: {
    analyst: (d) => {
      const kmh = num(d.speedKmh);
      return kmh === null ? 'impossible travel since the previous sign-in' : `impossible travel: ${Math.round(kmh)} km/h since the previous sign-in`;
    },
    user: 'This sign-in comes from far away from your last one.',
  },
  SUSPICIOUS_IP: {
    analyst: (d) => {
      const cidr = str(d.deniedCidr);
      return cidr ? `address in a deny-listed network (${cidr})` : 'address in a deny-listed network';
    },
    user: 'This network is not trusted for sign-in.',
  },
  FAILED_ATTEMPTS: {
    analyst: (d) => {
      const acc = num(d.accountFailures);
      const ip = num(d.ipFailures);
      if (acc === null && ip === null) return 'recent failed attempts';
      return `${acc ?? 0} failed password attempts on this account and ${ip ?? 0} from this address in the window`;
    },
    user: 'There were several failed attempts to sign in recently.',
  },
  RISK_UNAVAILABLE: {
    analyst: 'the risk scorer did not answer in time; stepped up by default (fail closed)',
    user: 'We could not check this sign-in right now, so we ask for a second step.',
  },
  RISK_DENY: { analyst: 'the score reached the policy\'s deny threshold', user: 'This sign-in was refused for your protection.' },
  MFA_REQUIRED_NO_FACTOR: {
    analyst: 'a second factor was required but the user has none enrolled',
    user: 'A second factor is needed and none is set up on this account.',
  },
  MFA_LOCKED: { analyst: 'too many wrong second-factor codes', user: 'Too many wrong codes were entered.' },
  TOO_MANY_ATTEMPTS: { analyst: 'the account was locked after repeated wrong passwords', user: 'Too many wrong passwords were entered.' },
  INVALID_CREDENTIALS: { analyst: 'wrong identifier or password', user: 'The identifier or password is incorrect.' },
  WEBAUTHN_FAILED: { analyst: 'the security key or passkey could not be verified', user: 'The security key or passkey could not be verified.' },
  SERVICE_UNAVAILABLE: { analyst: 'a dependency was unavailable during sign-in', user: 'Sign-in is temporarily unavailable.' },
});

/** The catalog in use. One line to switch to r-engine's: `{ ...FALLBACK_REASONS, ...REASONS }`. */
const CATALOG: ReasonCatalog = FALLBACK_REASONS;

/** For codes no catalog knows (a newer engine, an old row): named, never dropped. */
const GENERIC_USER = 'Something about this sign-in looked unusual.';

export type Direction = 'raises' | 'lowers' | 'context';

export interface ExplainableEvent {
  decision: string | null;
  score?: number | null;
  reasons: readonly string[];
  contributions?: Record<string, number> | null;
  signals?: unknown;
  policyVersion?: string | null;
  country?: string | null;
}

export interface Explanation {
  summary: string;
  reasons: { code: string; text: string; direction: Direction }[];
}

const VERB: Record<string, string> = { allow: 'allowed', step_up: 'stepped up', deny: 'denied' };

function detailsOf(signals: unknown): ReasonDetails {
  if (typeof signals !== 'object' || signals === null) return {};
  const d = (signals as { details?: unknown }).details;
  return typeof d === 'object' && d !== null ? (d as ReasonDetails) : {};
}

function analystText(code: string, details: ReasonDetails, ctx: ExplainContext, catalog: ReasonCatalog): string {
  const e = Object.hasOwn(catalog, code) ? catalog[code] : undefined;
  if (!e) return `signal ${code} (no description in the reason catalog)`;
  return typeof e.analyst === 'function' ? e.analyst(details, ctx) : e.analyst;
}

/**
 * The analyst's explanation of one decision: every reason with its text and whether it pushed
 * the score up or down (or is context, such as an outcome code), and a one-line summary such as
 * "stepped up: new device …; 14 other accounts tried from this /24 in the last hour".
 */
export function explain(event: ExplainableEvent, catalog: ReasonCatalog = CATALOG): Explanation {
  const details = detailsOf(event.signals);
  const ctx: ExplainContext = { country: event.country ?? null };
  const contributions = event.contributions ?? {};
  const seen = new Set<string>();
  const reasons: Explanation['reasons'] = [];
  for (const code of event.reasons) {
    if (typeof code !== 'string' || seen.has(code)) continue;
    seen.add(code);
    const c = contributions[code];
    const direction: Direction = typeof c === 'number' && c > 0 ? 'raises' : typeof c === 'number' && c < 0 ? 'lowers' : 'context';
    reasons.push({ code, text: analystText(code, details, ctx, catalog), direction });
  }
  const verb = event.decision ? (VERB[event.decision] ?? event.decision) : 'not scored';
  const score = typeof event.score === 'number' ? ` (score ${event.score}${event.policyVersion ? ` under policy ${event.policyVersion}` : ''})` : '';
  const body = reasons.length ? reasons.map((r) => r.text).join('; ') : event.decision ? 'nothing unusual' : 'no risk assessment was recorded';
  return { summary: `${verb}: ${body}${score}`, reasons };
}

/**
 * What to tell the person signing in. Only the catalog's user texts, never scores, thresholds or
 * details: those would let an attacker learn which signals to avoid.
 */
export function userMessage(reasons: readonly string[], catalog: ReasonCatalog = CATALOG): string {
  const texts: string[] = [];
  for (const code of reasons) {
    const text = Object.hasOwn(catalog, code) ? catalog[code].user : GENERIC_USER;
    if (!texts.includes(text)) texts.push(text);
  }
  return texts.length ? texts.join(' ') : 'Nothing unusual about this sign-in.';
}
