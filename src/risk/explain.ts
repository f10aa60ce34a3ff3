/**
 * Plain-language explanations of risk decisions: one text for the analyst (with the figures
 * behind each signal) and one for the person signing in (no figures, nothing an attacker could
 * tune against).
 *
 * Texts come from the engine's reason catalog (src/risk/reasons.ts `REASONS`), the one catalog for
 * every code a decision or a stored event can carry. Unknown codes (an older or newer build) get a
 * generic text rather than disappearing.
 */
import { NO_SIGNAL, SIGNAL_NAMES } from './policy.ts';
import { REASONS, type ReasonDetails } from './reasons.ts';

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

/** Codes the engine scores (risk and trust signals, NO_SIGNAL, RISK_UNAVAILABLE); the rest are flow outcomes. */
const SCORED = new Set<string>([...SIGNAL_NAMES, NO_SIGNAL, 'RISK_UNAVAILABLE']);

/** The engine's catalog, with the flow's outcome codes marked as context for the analyst view. */
export const CATALOG: ReasonCatalog = Object.freeze(
  Object.fromEntries(
    Object.entries(REASONS).map(([code, e]): [string, ReasonEntry] => [
      code,
      { direction: SCORED.has(code) ? e.direction : 'context', analyst: (d) => e.analyst(d), user: e.user },
    ]),
  ),
);

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
  // Catalog texts are sentences; in the one-line summary they are clauses ("; "-joined, no capital).
  const clause = (t: string) => t.replace(/\.$/, '').replace(/^[A-Z](?=[a-z])/, (c) => c.toLowerCase());
  const body = reasons.length ? reasons.map((r) => clause(r.text)).join('; ') : event.decision ? 'nothing unusual' : 'no risk assessment was recorded';
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
