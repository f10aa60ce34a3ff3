import type { Rng } from './prng.ts';

/**
 * Browsers as they ship: a device keeps its platform and browser, and its user agent changes
 * only when the browser updates (Chromium and Firefox every four weeks, Safari with the OS),
 * a few days after the release as auto-update rolls out.
 */
export type BrowserKind =
  | 'chrome-win'
  | 'chrome-mac'
  | 'edge-win'
  | 'firefox-win'
  | 'firefox-mac'
  | 'firefox-linux'
  | 'safari-mac'
  | 'chrome-linux'
  | 'safari-iphone'
  | 'chrome-android'
  | 'samsung-android'
  | 'safari-ipad';

const DAY = 86_400_000;
// Chrome 143 stable shipped 2025-12-02; releases every four weeks since.
const CHROME_BASE = { version: 143, at: Date.UTC(2025, 11, 2) };
const FIREFOX_BASE = { version: 146, at: Date.UTC(2025, 11, 9) };
// Safari 26.2 on 2025-12-12; a point release about every eight weeks.
const SAFARI_BASE = { minor: 2, at: Date.UTC(2025, 11, 12) };

export function chromeMajor(at: number): number {
  return CHROME_BASE.version + Math.max(0, Math.floor((at - CHROME_BASE.at) / (28 * DAY)));
}
export function firefoxMajor(at: number): number {
  return FIREFOX_BASE.version + Math.max(0, Math.floor((at - FIREFOX_BASE.at) / (28 * DAY)));
}
export function safariMinor(at: number): number {
  return SAFARI_BASE.minor + Math.max(0, Math.floor((at - SAFARI_BASE.at) / (56 * DAY)));
}

export interface BrowserModel {
  kind: BrowserKind;
  /** Days this device runs behind a release (auto-update rollout, restarts, managed fleets). */
  lagDays: number;
  /** Edge's build numbers differ per device; kept so a device's string is stable between updates. */
  build: number;
}

export function newBrowser(rng: Rng, kind: BrowserKind, managed = false): BrowserModel {
  return { kind, lagDays: managed ? rng.int(7, 21) : rng.int(0, 9), build: rng.int(40, 120) };
}

export function userAgent(m: BrowserModel, at: number): string {
  const t = at - m.lagDays * DAY;
  const cv = chromeMajor(t);
  const fv = firefoxMajor(t);
  const sv = `26.${safariMinor(t)}`;
  switch (m.kind) {
    case 'chrome-win':
      return `Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${cv}.0.0.0 Safari/537.36`;
    case 'chrome-mac':
      return `Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${cv}.0.0.0 Safari/537.36`;
    case 'chrome-linux':
      return `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${cv}.0.0.0 Safari/537.36`;
    case 'edge-win':
      return `Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${cv}.0.0.0 Safari/537.36 Edg/${cv}.0.${3400 + (cv - 140) * 60 + (m.build % 7)}.${m.build}`;
    case 'firefox-win':
      return `Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:${fv}.0) Gecko/20100101 Firefox/${fv}.0`;
    case 'firefox-mac':
      return `Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:${fv}.0) Gecko/20100101 Firefox/${fv}.0`;
    case 'firefox-linux':
      return `Mozilla/5.0 (X11; Linux x86_64; rv:${fv}.0) Gecko/20100101 Firefox/${fv}.0`;
    case 'safari-mac':
      return `Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/${sv} Safari/605.1.15`;
    case 'safari-iphone':
      return `Mozilla/5.0 (iPhone; CPU iPhone OS 18_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/${sv} Mobile/15E148 Safari/604.1`;
    case 'safari-ipad':
      return `Mozilla/5.0 (iPad; CPU OS 18_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/${sv} Mobile/15E148 Safari/604.1`;
    case 'chrome-android':
      return `Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${cv}.0.0.0 Mobile Safari/537.36`;
    case 'samsung-android':
      return `Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/${29 + Math.floor((cv - 143) / 3)}.0 Chrome/${cv - 3}.0.0.0 Mobile Safari/537.36`;
  }
}

export function pickDesktopBrowser(rng: Rng, country: string): BrowserKind {
  const macShare = country === 'US' || country === 'GB' ? 0.3 : 0.18;
  if (rng.chance(macShare)) return rng.weighted(['safari-mac', 'chrome-mac', 'firefox-mac'] as const, [45, 45, 10]);
  if (rng.chance(0.04)) return rng.weighted(['firefox-linux', 'chrome-linux'] as const, [60, 40]);
  return rng.weighted(['chrome-win', 'edge-win', 'firefox-win'] as const, [66, 22, 12]);
}

export function pickPhoneBrowser(rng: Rng, country: string): BrowserKind {
  const iosShare = country === 'US' ? 0.57 : country === 'GB' || country === 'CH' ? 0.5 : 0.33;
  if (rng.chance(iosShare)) return 'safari-iphone';
  return rng.weighted(['chrome-android', 'samsung-android'] as const, [75, 25]);
}

/** Tor Browser presents one fixed Firefox ESR string on every platform. */
export const TOR_BROWSER_UA = 'Mozilla/5.0 (Windows NT 10.0; rv:140.0) Gecko/20100101 Firefox/140.0';
