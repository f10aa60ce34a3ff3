import { randomUUID } from 'node:crypto';
import { setImmediate as setImmediatePromise } from 'node:timers/promises';
import { UnrecoverableError } from 'bullmq';
import type { Clock } from '../clock.ts';
import type { Db, Queryable } from '../db/db.ts';
import type { Geo } from '../risk/geo.ts';
import { PolicyDocumentSchema, type PolicyDocument } from '../risk/policy.ts';
import { newReadStats, readAttempts, type Attempt } from './jsonl.ts';
import { readLoginEvents } from './login-events.ts';
import { replayFactoryFor, type ReplayConfig } from './risk-adapter.ts';
import { runBacktest, type BacktestSummary } from './runner.ts';

export const BACKTEST_JOB = 'backtest.run';
/**
 * A running job with no progress write for this long is taken for dead (progress is written
 * every ≤ 500 ms of work). Shorter than the worker's lock (120 s), so when BullMQ hands a stalled
 * job out again the claim succeeds instead of leaving the row "running" for ever.
 */
export const STALE_MS = 90_000;

export type BacktestInput = { type: 'events'; from: string; to: string } | { type: 'jsonl'; bytes: number; lines: number };

export interface BacktestRow {
  id: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed';
  policy: PolicyDocument;
  compare: PolicyDocument | null;
  input: BacktestInput;
  total: number | null;
  processed: number;
  summary: BacktestSummary | null;
  error: string | null;
  created_by: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

const json = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);

export function createBacktestStore(db: Queryable, clock: Clock) {
  return {
    async create(d: { policy: PolicyDocument; compare: PolicyDocument | null; input: BacktestInput; text: string | null; total: number | null; createdBy: string | null }): Promise<string> {
      const id = randomUUID();
      await db.query(
        `INSERT INTO risk_backtests (id, status, policy, compare, input, input_text, total, created_by, created_at)
         VALUES ($1, 'queued', $2::jsonb, $3::jsonb, $4::jsonb, $5, $6, $7, $8)`,
        [id, JSON.stringify(d.policy), d.compare ? JSON.stringify(d.compare) : null, JSON.stringify(d.input), d.text, d.total, d.createdBy, new Date(clock.now())],
      );
      return id;
    },
    async get(id: string): Promise<BacktestRow | null> {
      const { rows } = await db.query<BacktestRow>(
        `SELECT id, status, policy, compare, input, total, processed, summary, error, created_by, created_at, started_at, finished_at
           FROM risk_backtests WHERE id = $1`,
        [id],
      );
      const r = rows[0];
      if (!r) return null;
      return { ...r, policy: json(r.policy) as PolicyDocument, compare: json(r.compare) as PolicyDocument | null, input: json(r.input) as BacktestInput, summary: json(r.summary) as BacktestSummary | null };
    },
    /** The latest jobs, newest first, without their summaries. */
    async list(limit: number): Promise<BacktestRow[]> {
      const { rows } = await db.query<BacktestRow>(
        `SELECT id, status, policy, compare, input, total, processed, NULL AS summary, error, created_by, created_at, started_at, finished_at
           FROM risk_backtests ORDER BY created_at DESC, id DESC LIMIT $1`,
        [limit],
      );
      return rows.map((r) => ({ ...r, policy: json(r.policy) as PolicyDocument, compare: json(r.compare) as PolicyDocument | null, input: json(r.input) as BacktestInput }));
    },
    /**
     * Claim a job: a queued one, or a running one whose worker fell silent (died mid-run; the
     * queue hands a stalled job out again). A duplicate delivery of a live or finished job finds
     * it taken and does nothing.
     */
    async start(id: string, staleMs = STALE_MS): Promise<{ policy: PolicyDocument; compare: PolicyDocument | null; input: BacktestInput; text: string | null } | null> {
      const now = clock.now();
      const { rows } = await db.query<{ policy: unknown; compare: unknown; input: unknown; input_text: string | null }>(
        `UPDATE risk_backtests SET status = 'running', started_at = $2, heartbeat_at = $2, processed = 0
          WHERE id = $1 AND (status = 'queued' OR (status = 'running' AND heartbeat_at < $3))
         RETURNING policy, compare, input, input_text`,
        [id, new Date(now), new Date(now - staleMs)],
      );
      const r = rows[0];
      if (!r) return null;
      return { policy: json(r.policy) as PolicyDocument, compare: json(r.compare) as PolicyDocument | null, input: json(r.input) as BacktestInput, text: r.input_text };
    },
    async progress(id: string, processed: number): Promise<void> {
      await db.query(`UPDATE risk_backtests SET processed = $2, heartbeat_at = $3 WHERE id = $1 AND status = 'running'`, [id, processed, new Date(clock.now())]);
    },
    async finish(id: string, summary: BacktestSummary): Promise<void> {
      await db.query(
        `UPDATE risk_backtests SET status = 'succeeded', summary = $2::jsonb, processed = $3, total = $3, input_text = NULL, finished_at = $4 WHERE id = $1`,
        [id, JSON.stringify(summary), summary.attempts.total, new Date(clock.now())],
      );
    },
    async fail(id: string, error: string): Promise<void> {
      await db.query(`UPDATE risk_backtests SET status = 'failed', error = $2, input_text = NULL, finished_at = $3 WHERE id = $1`, [id, error.slice(0, 500), new Date(clock.now())]);
    },
  };
}
export type BacktestStore = ReturnType<typeof createBacktestStore>;

export interface BacktestJobDeps {
  db: Db;
  clock: Clock;
  geo: Geo | (() => Promise<Geo>);
  config: ReplayConfig;
  /** Progress is written at most this often (ms). */
  progressIntervalMs?: number;
  /** Called after each progress write (tests observe progress through it). */
  onProgress?: (id: string, processed: number) => void;
}

/**
 * The `backtest` queue's processor: claim the job, replay, store progress and the summary.
 * Idempotent: a job that is not queued any more (a retry or a duplicate) is left alone. A run
 * that throws is marked failed with its message (no stack, no input) and not retried.
 */
export function backtestProcessor(deps: BacktestJobDeps): (name: string, payload: unknown, jobId: string) => Promise<{ id: string; status: string }> {
  const store = createBacktestStore(deps.db, deps.clock);
  const every = deps.progressIntervalMs ?? 500;
  return async (name, payload) => {
    const id = (payload as { id?: unknown } | null)?.id;
    if (name !== BACKTEST_JOB || typeof id !== 'string' || !/^[0-9a-f-]{36}$/.test(id)) throw new UnrecoverableError(`invalid ${BACKTEST_JOB} job`);
    const job = await store.start(id);
    if (!job) return { id, status: 'skipped' };
    try {
      // Stored documents were validated on the way in; checked again so a hand-edited row fails here.
      const policy = PolicyDocumentSchema.parse(job.policy);
      const compare = job.compare ? PolicyDocumentSchema.parse(job.compare) : undefined;
      const geo = typeof deps.geo === 'function' ? await deps.geo() : deps.geo;
      const stats = newReadStats();
      let attempts: AsyncIterable<Attempt>;
      if (job.input.type === 'jsonl') attempts = readAttempts({ text: job.text ?? '' }, stats);
      else attempts = readLoginEvents(deps.db, { from: Date.parse(job.input.from), to: Date.parse(job.input.to) });
      let last = 0;
      const summary = await runBacktest({
        attempts,
        factory: replayFactoryFor(geo, deps.config),
        policy,
        compare,
        progressEvery: 1000,
        readStats: job.input.type === 'jsonl' ? stats : undefined,
        onProgress: async (n) => {
          // A replay is CPU-bound: give the event loop back every 1 000 attempts, so a back-test
          // never holds up the live risk scoring (or, embedded, the API) sharing this process.
          await setImmediatePromise();
          // Throttles database writes by elapsed machine time, not domain time (the injected clock).
          const now = performance.now();
          if (now - last < every) return;
          last = now;
          await store.progress(id, n);
          deps.onProgress?.(id, n);
        },
      });
      await store.finish(id, summary);
      deps.onProgress?.(id, summary.attempts.total);
      return { id, status: 'succeeded' };
    } catch (e) {
      await store.fail(id, e instanceof Error ? e.message : String(e));
      return { id, status: 'failed' };
    }
  };
}
