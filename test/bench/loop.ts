/**
 * Measurement helpers of the benchmark (test/bench/bench.ts): closed-loop runner with latency
 * percentiles, main-thread event-loop utilisation and whole-machine CPU share per phase.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';

export interface RunResult {
  ok: number;
  failures: number;
  seconds: number;
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Main-thread event-loop utilisation and whole-machine CPU busy share during the phase. */
  eventLoop: number;
  machineCpu: number;
  failureKinds: Record<string, number>;
}

/** Busy and total CPU time over all cores, from os.cpus() (includes Postgres and Redis). */
export function cpuTimes() {
  let busy = 0;
  let total = 0;
  for (const { times: t } of os.cpus()) {
    busy += t.user + t.nice + t.sys + t.irq;
    total += t.user + t.nice + t.sys + t.irq + t.idle;
  }
  return { busy, total };
}

export const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/**
 * Runs `workers` loops of `op` until `seconds` have passed (operations already started finish;
 * they count, and the elapsed time is measured until the last one ends). `op` returns null on
 * success or a short failure label.
 */
export async function closedLoop(workers: number, seconds: number, op: (w: number) => Promise<string | null>): Promise<RunResult> {
  const lat: number[] = [];
  const failureKinds: Record<string, number> = {};
  let ok = 0;
  let failures = 0;
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = cpuTimes();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      while (performance.now() < deadline) {
        const s = performance.now();
        let fail: string | null;
        try {
          fail = await op(w);
        } catch (e) {
          fail = `exception: ${e instanceof Error ? e.message : String(e)}`.slice(0, 120);
        }
        lat.push(performance.now() - s);
        if (fail === null) ok++;
        else {
          failures++;
          failureKinds[fail] = (failureKinds[fail] ?? 0) + 1;
        }
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const cpu1 = cpuTimes();
  const eventLoop = round(performance.eventLoopUtilization(elu0).utilization, 2);
  const machineCpu = round((cpu1.busy - cpu0.busy) / Math.max(1, cpu1.total - cpu0.total), 2);
  lat.sort((a, b) => a - b);
  return {
    ok,
    failures,
    seconds: round(elapsed, 2),
    perSec: round(ok / elapsed),
    p50Ms: round(percentile(lat, 50), 2),
    p99Ms: round(percentile(lat, 99), 2),
    eventLoop,
    machineCpu,
    failureKinds,
  };
}

/** a ÷ b rounded, 0 when b is 0. */
export const ratio = (a: number, b: number, d = 3) => (b > 0 ? round(a / b, d) : 0);
