/**
 * Plain-language explanations of risk decisions: one text for the analyst (with the figures
 * behind each signal) and one for the person signing in (no figures, nothing an attacker could
 * tune against).
 *
 * Texts come from the engine's reason catalog (src/risk/reasons.ts `REASONS`: `{ direction,
 * analyst(details), user }` per code); FALLBACK_REASONS below covers outcome codes the flow
 * appends (MFA_LOCKED, RISK_DENIED…) and older stored codes. Unknown codes get a generic text
 * rather than disappearing.
 */

/** Signal details as recorded with a login event; every member optional (old rows, new signals). */
import { REASONS } from './reasons.ts';

export type ReasonDetails = { [key: string]: unknown };


/** `context`: an outcome code appended by the flow (locked, denied), not a scored signal. */
export type ReasonDirection = 'risk' | 'trust' | 'context';

export interface ReasonEntry {
  direction: ReasonDirection;
  /** For analysts; may quote the signal's details (speeds, counts, networks). */
  analyst(details: ReasonDetails): string;
  /** For the person signing in: short, calm, no figures. */
  user: string;
}

export type ReasonCatalog = Readonly<Record<string, ReasonEntry>>;

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

/** Texts for the reason codes the engine and the login flow produce today. */
export const FALLBACK_REASONS: ReasonCatalog = Object.freeze({
  NEW_DEVICE: {
    direction: 'risk',
    analyst: () => 'new device: this user never signed in successfully from it',
    user: 'We did not recognise this device.',
  },
  NEW_COUNTRY: {
    direction: 'risk',
    analyst: (d) => (str(d.country) ? `first sign-in from ${str(d.country)}, a country this user never signed in from` : 'a country this user never signed in from'),
    user: 'This sign-in comes from a place you have not signed in from before.',
  },
  IMPOSSIBLE_TRAVEL: {
    direction: 'risk',
    analyst: (d) => {
      const kmh = num(d.speedKmh);
      return kmh === null ? 'impossible travel since the previous sign-in' : `impossible travel: ${Math.round(kmh)} km/h since the previous sign-in`;
    },
    user: 'This sign-in comes from far away from your last one.',
  },
  SUSPICIOUS_IP: {
    direction: 'risk',
    analyst: (d) => (str(d.deniedCidr) ? `address in a deny-listed network (${str(d.deniedCidr)})` : 'address in a deny-listed network'),
    user: 'This network is not trusted for sign-in.',
  },
  FAILED_ATTEMPTS: {
    direction: 'risk',
    analyst: (d) => {
      const acc = num(d.accountFailures);
      const ip = num(d.ipFailures);
      if (acc === null && ip === null) return 'recent failed attempts';
      return `${acc ?? 0} failed password attempts on this account and ${ip ?? 0} from this address in the window`;
    },
    user: 'There were several failed attempts to sign in recently.',
  },
  RISK_UNAVAILABLE: {
    direction: 'risk',
    analyst: () => 'the risk scorer did not answer in time; stepped up by default (fail closed)',
    user: 'We could not check this sign-in right now, so we ask for a second step.',
  },
  RISK_DENY: { direction: 'context', analyst: () => "the score reached the policy's deny threshold", user: 'This sign-in was refused for your protection.' },
  MFA_REQUIRED_NO_FACTOR: {
    direction: 'context',
    analyst: () => 'a second factor was required but the user has none enrolled',
    user: 'A second factor is needed and none is set up on this account.',
  },
  MFA_LOCKED: { direction: 'context', analyst: () => 'too many wrong second-factor codes', user: 'Too many wrong codes were entered.' },
  TOO_MANY_ATTEMPTS: { direction: 'context', analyst: () => 'the account was locked after repeated wrong passwords', user: 'Too many wrong passwords were entered.' },
  INVALID_CREDENTIALS: { direction: 'context', analyst: () => 'wrong identifier or password', user: 'The identifier or password is incorrect.' },
  WEBAUTHN_FAILED: { direction: 'context', analyst: () => 'the security key or passkey could not be verified', user: 'The security key or passkey could not be verified.' },
  SERVICE_UNAVAILABLE: { direction: 'context', analyst: () => 'a dependency was unavailable during sign-in', user: 'Sign-in is temporarily unavailable.' },
});

/** The catalog in use: the engine's (src/risk/reasons.ts), with these entries for codes it does not carry. */
const CATALOG: ReasonCatalog = { ...FALLBACK_REASONS, ...(REASONS as unknown as ReasonCatalog) };

/** For codes no catalog knows (a newer engine, an old row): named, never dropped. */
const GENERIC_USER = 'Something about this sign-in looked unusual.';

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
  reasons: { code: string; text: string; direction: ReasonDirection }[];
}

const VERB: Record<string, string> = { allow: 'allowed', step_up: 'stepped up', deny: 'denied' };

function detailsOf(signals: unknown): ReasonDetails {
  if (typeof signals !== 'object' || signals === null) return {};
  const d = (signals as { details?: unknown }).details;
  return typeof d === 'object' && d !== null ? (d as ReasonDetails) : {};
}

const entry = (catalog: ReasonCatalog, code: string): ReasonEntry | undefined => (Object.hasOwn(catalog, code) ? catalog[code] : undefined);

/**
 * The analyst's explanation of one decision: each reason with its text and whether it pushed
 * the score up (risk) or down (trust) or is context (an outcome code), and a one-line summary
 * such as "stepped up: new device …; 14 other accounts tried from this /24 in the last hour".
 */
export function explain(event: ExplainableEvent, catalog: ReasonCatalog = CATALOG): Explanation {
  const details: ReasonDetails = { country: event.country ?? undefined, ...detailsOf(event.signals) };
  const contributions = event.contributions ?? {};
  const seen = new Set<string>();
  const reasons: Explanation['reasons'] = [];
  for (const code of event.reasons) {
    if (typeof code !== 'string' || seen.has(code)) continue;
    seen.add(code);
    const e = entry(catalog, code);
    const c = contributions[code];
    // The recorded contribution decides the direction; the catalog's only when none was recorded.
    const direction: ReasonDirection = typeof c === 'number' && c !== 0 ? (c > 0 ? 'risk' : 'trust') : (e?.direction ?? 'context');
    const text = e ? e.analyst(details) : `signal ${code} (no description in the reason catalog)`;
    reasons.push({ code, text, direction });
  }
  const verb = event.decision ? (VERB[event.decision] ?? event.decision) : 'not scored';
  const score = typeof event.score === 'number' ? ` (score ${event.score}${event.policyVersion ? ` under policy ${event.policyVersion}` : ''})` : '';
  const body = reasons.length ? reasons.map((r) => r.text).join('; ') : event.decision ? 'nothing unusual' : 'no risk assessment was recorded';
  return { summary: `${verb}: ${body}${score}`, reasons };
}

/**
 * What to tell the person signing in. Only the catalog's user texts, never scores, thresholds or
 * details: those would let an attacker learn which signals to avoid. Trust reasons are left out
 * when a risk reason is present (they do not explain why a second step is asked).
 */
export function userMessage(reasons: readonly string[], catalog: ReasonCatalog = CATALOG): string {
  const entries = reasons.map((code) => ({ code, e: entry(catalog, code) }));
  const risky = entries.some((x) => x.e?.direction !== 'trust');
  const texts: string[] = [];
  for (const { e } of entries) {
    if (risky && e?.direction === 'trust') continue;
    const text = e ? e.user : GENERIC_USER;
    if (!texts.includes(text)) texts.push(text);
  }
  return texts.length ? texts.join(' ') : 'Nothing unusual about this sign-in.';
}
