import { createHash } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Principal, Requirement } from '../rbac/rbac.ts';

/** What a verification proved, enough to answer `/auth/verify` without touching Postgres. */
export interface VerifiedCredential {
  principal: Principal;
  email: string;
  roles: string[];
  permissions: { name: string; requirement: Requirement | null }[];
}

export interface VerifyCache {
  get(credential: string): VerifiedCredential | undefined;
  /**
   * Remember a verification until min(now + ttl, `notAfterMs`). The caller passes the earliest of
   * the token's `exp` and the session's idle and absolute expiry, so a cached answer never
   * outlives the credential. Refused for a session cleared within the last ttl (a verification
   * that raced a revocation cannot put the session back).
   */
  set(credential: string, value: VerifiedCredential, notAfterMs: number): void;
  /** Drop every entry of a session (wired to the revocation broadcast). Returns how many. */
  clearSession(sid: string): number;
  clear(): void;
  readonly size: number;
  stats(): { hits: number; misses: number; evictions: number; size: number };
}

export interface VerifyCacheOptions {
  clock: Clock;
  /** Entries kept at most; the least recently used goes first. Default 10 000; 0 disables. */
  max?: number;
  /** Upper bound of an entry's life, ms. Default 30 s; role and permission changes wait this long. */
  ttlMs?: number;
}

/** Stops raw tokens from sitting in memory as map keys (heap dumps, debug output). */
export const credentialKey = (credential: string): string => createHash('sha256').update(credential).digest('base64url');

interface Entry {
  value: VerifiedCredential;
  sid: string;
  expiresAt: number;
}

export function createVerifyCache(o: VerifyCacheOptions): VerifyCache {
  const max = o.max ?? 10_000;
  const ttlMs = o.ttlMs ?? 30_000;
  if (!Number.isInteger(max) || max < 0) throw new TypeError('verify cache: max must be a non-negative integer');
  if (!Number.isFinite(ttlMs) || ttlMs < 0) throw new TypeError('verify cache: ttlMs must be a non-negative number');
  const { clock } = o;
  // A Map iterates in insertion order: re-inserting on each hit makes the first key the LRU.
  const entries = new Map<string, Entry>();
  const bySession = new Map<string, Set<string>>();
  // sid → until: sessions cleared recently, refused by set().
  const cleared = new Map<string, number>();
  let hits = 0;
  let misses = 0;
  let evictions = 0;

  const unindex = (k: string, sid: string) => {
    const keys = bySession.get(sid);
    if (!keys) return;
    keys.delete(k);
    if (keys.size === 0) bySession.delete(sid);
  };
  const remove = (k: string) => {
    const e = entries.get(k);
    if (!e) return;
    entries.delete(k);
    unindex(k, e.sid);
  };

  return {
    get(credential) {
      if (max === 0) return undefined;
      const k = credentialKey(credential);
      const e = entries.get(k);
      if (!e) {
        misses++;
        return undefined;
      }
      if (e.expiresAt <= clock.now()) {
        remove(k);
        misses++;
        return undefined;
      }
      entries.delete(k);
      entries.set(k, e);
      hits++;
      return e.value;
    },

    set(credential, value, notAfterMs) {
      if (max === 0 || ttlMs === 0) return;
      const now = clock.now();
      const sid = value.principal.sessionId;
      const block = cleared.get(sid);
      if (block !== undefined) {
        if (block > now) return;
        cleared.delete(sid);
      }
      const expiresAt = Math.min(now + ttlMs, notAfterMs);
      if (!(expiresAt > now)) return;
      const k = credentialKey(credential);
      remove(k);
      entries.set(k, { value, sid, expiresAt });
      let keys = bySession.get(sid);
      if (!keys) bySession.set(sid, (keys = new Set()));
      keys.add(k);
      while (entries.size > max) {
        const oldest = entries.keys().next().value as string;
        remove(oldest);
        evictions++;
      }
    },

    clearSession(sid) {
      const now = clock.now();
      if (ttlMs > 0 && max > 0) {
        cleared.delete(sid);
        cleared.set(sid, now + ttlMs);
        // Bounded like the entries; the oldest marks have expired or soon will.
        while (cleared.size > max) cleared.delete(cleared.keys().next().value as string);
      }
      const keys = bySession.get(sid);
      if (!keys) return 0;
      const n = keys.size;
      for (const k of keys) entries.delete(k);
      bySession.delete(sid);
      return n;
    },

    clear() {
      entries.clear();
      bySession.clear();
    },

    get size() {
      return entries.size;
    },

    stats: () => ({ hits, misses, evictions, size: entries.size }),
  };
}
