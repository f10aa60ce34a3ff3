import { userAgentFamily } from '../risk/user-agent.ts';

const OS_TOKEN: Record<string, string> = {
  Windows: 'Windows NT 10.0',
  iOS: 'iPhone',
  Android: 'Android',
  macOS: 'Macintosh',
  ChromeOS: 'CrOS',
  Linux: 'Linux',
  Other: '',
};
const BROWSER_TOKEN: Record<string, string> = {
  Edge: 'Edg/1.0',
  Opera: 'OPR/1.0',
  Firefox: 'Firefox/1.0',
  Samsung: 'SamsungBrowser/1.0',
  Chrome: 'Chrome/1.0',
  Safari: 'Safari/1.0',
  Script: 'python-requests/1.0',
  Other: 'Unknown/1.0',
};

/**
 * A stand-in User-Agent of a stored family ("Chrome/Windows"): login_events keeps the family,
 * not the header, and the engine only ever looks at the family, so replaying this string
 * decides as the live path did. Null for an unknown or missing family.
 */
export function userAgentFromFamily(family: string | null): string | null {
  if (!family) return null;
  const [b, o] = family.split('/');
  const bt = BROWSER_TOKEN[b];
  const ot = OS_TOKEN[o];
  if (bt === undefined || ot === undefined) return null;
  const ua = `Mozilla/5.0 (${ot}) ${bt}`;
  return userAgentFamily(ua) === family ? ua : null;
}

export const UA_FAMILY_PARTS = { browsers: Object.keys(BROWSER_TOKEN), systems: Object.keys(OS_TOKEN) };
