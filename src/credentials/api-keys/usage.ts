import type { Clock } from '../../clock.ts';
import type { Logger } from '../../logger.ts';
import type { ApiKeyStore, UsageRow } from './store.ts';

/**
 * Usage statistics without a write per request: each use is a map update in memory (count, last
 * use, last address, per-day counts in UTC) and every `flushMs` the whole batch is written in one
 * transaction of two statements (store.addUsage). Several processes add up: each writes its own
 * increments. A crash loses at most one interval of counts, never a key's validity.
 */
export function createUsageRecorder(o: { store: ApiKeyStore; clock: Clock; logger: Logger; flushMs: number }) {
  let pending = new Map<string, UsageRow>();
  let writing: Promise<void> = Promise.resolve();

  const flush = (): Promise<void> => {
    if (pending.size === 0) return writing;
    const batch = [...pending.values()];
    pending = new Map();
    writing = writing
      .then(() => o.store.addUsage(batch))
      .catch((err) => o.logger.error({ err, keys: batch.length }, 'API-key usage could not be written'));
    return writing;
  };
  const timer = setInterval(() => void flush(), o.flushMs);
  timer.unref?.();

  return {
    record(keyId: string, ip: string): void {
      const now = o.clock.now();
      const day = new Date(now).toISOString().slice(0, 10);
      const u = pending.get(keyId) ?? { keyId, count: 0, lastUsedAt: now, lastIp: ip, days: {} };
      u.count++;
      if (now >= u.lastUsedAt) {
        u.lastUsedAt = now;
        u.lastIp = ip;
      }
      u.days[day] = (u.days[day] ?? 0) + 1;
      pending.set(keyId, u);
    },
    flush,
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}

export type UsageRecorder = ReturnType<typeof createUsageRecorder>;
