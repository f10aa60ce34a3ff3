import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * Which addresses may sign up: the allowed domains (SIGNUP_ALLOWED_DOMAINS; empty = any) and,
 * always, not a throwaway-mail domain. The deny list is the npm package disposable-email-domains
 * (121 570 exact domains and 399 wildcard ones, `*.domain`), read once on the first sign-up.
 *
 * Until organisations with their own email domains land (issue 10, home-realm discovery), the
 * allowed domains are one deployment-wide list.
 */
let exact: Set<string> | null = null;
let wildcard: string[] | null = null;

function lists() {
  if (!exact || !wildcard) {
    const require = createRequire(import.meta.url);
    exact = new Set(JSON.parse(readFileSync(require.resolve('disposable-email-domains/index.json'), 'utf8')) as string[]);
    wildcard = JSON.parse(readFileSync(require.resolve('disposable-email-domains/wildcard.json'), 'utf8')) as string[];
  }
  return { exact, wildcard };
}

export const domainOf = (email: string): string => email.slice(email.lastIndexOf('@') + 1).toLowerCase().replace(/\.$/, '');

/** Stops throwaway sign-ups: the domain or any parent of it is on the list (so `x.mailinator.com` too). */
export function isDisposable(domain: string): boolean {
  const l = lists();
  const labels = domain.toLowerCase().split('.');
  for (let i = 0; i < labels.length - 1; i++) {
    const d = labels.slice(i).join('.');
    if (l.exact.has(d)) return true;
    if (i > 0 && l.wildcard.includes(d)) return true;
  }
  return false;
}

/** The parsed SIGNUP_ALLOWED_DOMAINS: lower-case domains; empty means any domain. */
export const parseDomains = (s: string): string[] =>
  s.split(',').map((d) => d.trim().toLowerCase().replace(/^@/, '')).filter(Boolean);

/** Whether the domain is allowed: listed exactly, or a subdomain of one listed as `.example.com`. */
export function domainAllowed(domain: string, allowed: string[]): boolean {
  if (!allowed.length) return true;
  return allowed.some((a) => (a.startsWith('.') ? domain.endsWith(a) : domain === a));
}
