import type { Logger } from '../../logger.ts';

/**
 * A client of a k-anonymity range API compatible with Have I Been Pwned's Pwned Passwords
 * (`GET {base}/range/{first 5 hex of SHA-1}` → lines `SUFFIX:COUNT`): only five hex digits of
 * the hash leave the process. Padding is asked for (`Add-Padding`), and padded lines (count 0)
 * are ignored.
 *
 * Fails open: a slow, unreachable or malformed answer is logged (one warning line, without the
 * prefix) and reads as "not found", so sign-in and sign-up never depend on a third party.
 */
export interface PwnedRange {
  /** The number of breaches the password was seen in; 0 when not found; null when the service could not answer. */
  count(sha1Upper: string): Promise<number | null>;
}

export function createPwnedRange(o: { baseUrl: string; timeoutMs: number; logger: Pick<Logger, 'warn'>; fetch?: typeof fetch }): PwnedRange {
  const base = o.baseUrl.replace(/\/+$/, '');
  const doFetch = o.fetch ?? fetch;
  return {
    async count(sha1) {
      const prefix = sha1.slice(0, 5);
      const suffix = sha1.slice(5);
      try {
        const res = await doFetch(`${base}/range/${prefix}`, {
          headers: { 'Add-Padding': 'true', 'User-Agent': 'Threshold' },
          signal: AbortSignal.timeout(o.timeoutMs),
          redirect: 'error',
        });
        if (res.status !== 200) throw new Error(`status ${res.status}`);
        const text = await res.text();
        if (text.length > 2_000_000) throw new Error('answer too large');
        for (const line of text.split(/\r?\n/)) {
          const i = line.indexOf(':');
          if (i !== 35 || line.slice(0, 35).toUpperCase() !== suffix) continue;
          const n = Number.parseInt(line.slice(i + 1), 10);
          return Number.isFinite(n) && n > 0 ? n : 0;
        }
        return 0;
      } catch (err) {
        o.logger.warn({ err: { message: (err as Error)?.message ?? String(err) } }, 'pwned-passwords range API unreachable: password accepted without it (fail open)');
        return null;
      }
    },
  };
}
