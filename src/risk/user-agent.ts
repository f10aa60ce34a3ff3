/**
 * A coarse user-agent family, "Browser/OS" (e.g. "Chrome/Windows"), kept per login event instead
 * of the full header: enough to tell "the same kind of browser" from "a different one", without
 * storing a fingerprint. Versions are left out on purpose: browsers update every few weeks.
 */
export function userAgentFamily(ua: string | null | undefined): string | null {
  if (!ua) return null;
  const s = ua.slice(0, 512);
  const os = /Windows/.test(s)
    ? 'Windows'
    : /iPhone|iPad|iPod/.test(s)
      ? 'iOS'
      : /Android/.test(s)
        ? 'Android'
        : /Mac OS X|Macintosh/.test(s)
          ? 'macOS'
          : /CrOS/.test(s)
            ? 'ChromeOS'
            : /Linux/.test(s)
              ? 'Linux'
              : 'Other';
  const browser = /Edg(e|A|iOS)?\//.test(s)
    ? 'Edge'
    : /OPR\/|Opera/.test(s)
      ? 'Opera'
      : /Firefox\/|FxiOS\//.test(s)
        ? 'Firefox'
        : /SamsungBrowser\//.test(s)
          ? 'Samsung'
          : /Chrome\/|CriOS\//.test(s)
            ? 'Chrome'
            : /Safari\//.test(s)
              ? 'Safari'
              : /curl|python|okhttp|Go-http|Java\/|axios|node-fetch|libwww/i.test(s)
                ? 'Script'
                : 'Other';
  return `${browser}/${os}`;
}
