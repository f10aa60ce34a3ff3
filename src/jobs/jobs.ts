/**
 * One job interface for both runtimes: BullMQ on Redis in production, an in-process runner in
 * the embedded default. Processors are registered per queue and must be idempotent.
 */
export type Processor = (name: string, payload: unknown, jobId: string) => Promise<unknown>;

export interface JobOptions {
  /** Deterministic id (no ':' inside) so a duplicated request runs once. */
  jobId: string;
  attempts?: number;
}

export interface Jobs {
  /** Enqueue and wait for the result; rejects with JobTimeoutError after timeoutMs. */
  request<R>(queue: string, name: string, payload: unknown, opts: JobOptions & { timeoutMs: number }): Promise<R>;
  /** Fire and forget (with retries). */
  enqueue(queue: string, name: string, payload: unknown, opts: JobOptions): Promise<void>;
  ping(): Promise<void>;
  /** Workers listening on a queue (the in-process runner always has its processors). */
  workers(queue: string): Promise<number>;
  /** Jobs in the queue by state (waiting, active, delayed, failed, prioritized), for /metrics. */
  counts?(queue: string): Promise<Record<string, number>>;
  close(): Promise<void>;
}

export class JobTimeoutError extends Error {
  constructor(queue: string, ms: number) {
    super(`job on queue ${queue} did not finish within ${ms} ms`);
    this.name = 'JobTimeoutError';
  }
}

export const assertJobId = (id: string): string => {
  if (!/^[A-Za-z0-9_.-]{1,200}$/.test(id)) throw new Error(`invalid job id: ${id}`);
  return id;
};

export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, rej) => {
      t = setTimeout(() => rej(onTimeout()), ms);
    }),
  ]).finally(() => clearTimeout(t));
}
