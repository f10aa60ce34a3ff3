import { assertJobId, JobTimeoutError, withTimeout, type Jobs, type Processor } from './jobs.ts';
import { timeJob } from '../metrics/metrics.ts';

/** The embedded default's job runner: same interface, processors called in this process. */
export function createInProcessJobs(processors: Record<string, Processor>): Jobs {
  const done = new Map<string, Promise<unknown>>();
  const run = (queue: string, name: string, payload: unknown, jobId: string) => {
    const key = `${queue}/${assertJobId(jobId)}`;
    let p = done.get(key);
    if (!p) {
      const proc = processors[queue];
      if (!proc) return Promise.reject(new Error(`no processor for queue ${queue}`));
      p = proc(name, payload, jobId);
      done.set(key, p);
      // Remember a job id for a while so duplicates run once, like BullMQ's retained jobs.
      setTimeout(() => done.delete(key), 10 * 60_000).unref();
      p.catch(() => done.delete(key));
    }
    return p;
  };
  return {
    request: <R>(queue: string, name: string, payload: unknown, o: { jobId: string; timeoutMs: number }) =>
      timeJob(queue, () => withTimeout(run(queue, name, payload, o.jobId) as Promise<R>, o.timeoutMs, () => new JobTimeoutError(queue, o.timeoutMs))),
    async enqueue(queue, name, payload, o) {
      run(queue, name, payload, o.jobId).catch(() => {});
    },
    async ping() {},
    async workers(queue) {
      return processors[queue] ? 1 : 0;
    },
    async close() {},
  };
}
