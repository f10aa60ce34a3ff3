import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The process's Prometheus metrics (issue 11 §6), in one registry of its own (not prom-client's
 * global one, so nothing a dependency registers leaks into /metrics). Module-level on purpose: the
 * places that count (login completion, risk decisions, step-up, lockout, rate limits, token
 * verification, refresh reuse, jobs, HTTP) each touch it with one line and need no wiring.
 *
 * Labels are closed sets (methods, outcomes, decision levels, reason codes, route patterns,
 * queue names): never a user, an IP or a raw path, so cardinality stays bounded.
 * Every metric is named in deploy/prometheus/threshold-alerts.yml or a dashboard; the alert-rules
 * test checks each name an expression uses exists here.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'threshold_process_' });

const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
  new Counter<L>({ name, help, labelNames, registers: [registry] });

export const metrics = {
  /** One per login outcome recorded (login_events): method is the last factor used. */
  logins: counter('threshold_logins_total', 'Login attempts by the last factor used and their outcome', ['method', 'outcome']),
  /** One per risk decision, once per reason (`NONE` when none fired). */
  riskDecisions: counter('threshold_risk_decisions_total', 'Risk decisions by decision, level and reason', ['decision', 'level', 'reason']),
  stepUps: counter('threshold_stepups_total', 'Step-ups of live sessions: started, and completed (session raised)', ['stage']),
  lockouts: counter('threshold_lockouts_total', 'Accounts locked by consecutive failures, by counter (password or mfa)', ['counter']),
  rateLimited: counter('threshold_rate_limited_total', 'Requests refused by a rate limiter, by limiter', ['limiter']),
  tokenVerifications: counter('threshold_token_verifications_total', 'Access-token signature and claim checks by result', ['result']),
  refreshReuse: counter('threshold_refresh_reuse_total', 'Refresh tokens presented again after rotation (the family is revoked)'),
  auditEvents: counter('threshold_audit_events_total', 'Audit events appended, by type', ['type']),
  jobDuration: new Histogram({
    name: 'threshold_job_duration_seconds',
    help: 'Jobs awaited by this process (enqueue to result), by queue and outcome (ok, failed, timeout)',
    labelNames: ['queue', 'outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  }),
  queueDepth: new Gauge({ name: 'threshold_queue_jobs', help: 'Jobs in a queue by state, read when scraped', labelNames: ['queue', 'state'], registers: [registry] }),
  queueWorkers: new Gauge({ name: 'threshold_queue_workers', help: 'Live workers of a queue (heartbeats), read when scraped', labelNames: ['queue'], registers: [registry] }),
  httpDuration: new Histogram({
    name: 'threshold_http_request_duration_seconds',
    help: 'HTTP requests by method, route pattern and status class',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  }),
};

/** Login outcome (one line at each recording place). `factors` are the flow's proven factors. */
export function countLogin(outcome: string, factors: readonly string[] | undefined): void {
  metrics.logins.inc({ method: factors?.length ? factors[factors.length - 1] : 'none', outcome });
}

/** A risk decision, once per reason so a spike of one reason (e.g. RISK_UNAVAILABLE) stands out. */
export function countRiskDecision(r: { decision: string; level: string; reasons: readonly string[] }): void {
  for (const reason of r.reasons.length ? r.reasons : ['NONE']) metrics.riskDecisions.inc({ decision: r.decision, level: r.level, reason });
}

/** Times a job the caller awaits; rethrows what it threw. */
export async function timeJob<T>(queue: string, work: () => Promise<T>): Promise<T> {
  const end = metrics.jobDuration.startTimer({ queue });
  try {
    const r = await work();
    end({ outcome: 'ok' });
    return r;
  } catch (e) {
    end({ outcome: (e as Error)?.name === 'JobTimeoutError' ? 'timeout' : 'failed' });
    throw e;
  }
}

const jobRun = new Histogram({
  name: 'threshold_worker_job_duration_seconds',
  help: 'Jobs processed by this worker process (processing start to finish), by queue and outcome',
  labelNames: ['queue', 'outcome'],
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30, 120],
  registers: [registry],
});

interface FinishedJob {
  processedOn?: number;
  finishedOn?: number;
}
/** The worker process's side: how long each job took to process, from BullMQ's own timestamps. */
export function observeWorker(w: { on(ev: 'completed' | 'failed', cb: (job: FinishedJob | undefined) => void): unknown }, queue: string): void {
  const seen = (outcome: string) => (job: FinishedJob | undefined) => {
    if (job?.processedOn && job.finishedOn) jobRun.observe({ queue, outcome }, Math.max(0, job.finishedOn - job.processedOn) / 1000);
  };
  w.on('completed', seen('ok'));
  w.on('failed', seen('failed'));
}
