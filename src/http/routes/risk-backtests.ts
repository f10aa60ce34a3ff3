import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import { AppError, type ErrorCode } from '../../errors.ts';
import { routeDocs } from '../openapi/doc.ts';
import { readJson } from '../body.ts';
import { requirePermission } from '../middleware/auth.ts';
import { BACKTEST_JOB, createBacktestStore, STALE_MS, type BacktestRow } from '../../backtest/job.ts';
import { parsePolicy, policyFromDb, PolicySourceError } from '../../backtest/policy-source.ts';
import { DEFAULT_POLICY, RiskPolicyError, type PolicyDocument } from '../../risk/policy.ts';
import type { Env, Services } from '../services.ts';
import type { AnyPrincipal as Principal } from '../../principals/types.ts';

const PERMISSION = 'VIEW_RISK';
const MAX_RANGE_DAYS = 366;
/**
 * Jobs one account may have queued or running at once. Each queued upload keeps up to
 * BACKTEST_MAX_UPLOAD_BYTES in Postgres until a worker takes it, so without a bound one VIEW_RISK
 * account could fill the database and the queue (starving everyone else's back-tests).
 */
export const BACKTEST_MAX_ACTIVE_PER_USER = 3;
/**
 * Back-test requests this process receives at once. An upload is held whole while it is parsed
 * and stored (about 20 MB of memory for an 8 MiB body), so without a bound parallel uploads of
 * one account could exhaust the heap and take sign-in down with it; the excess is refused before
 * its body is read.
 */
export const BACKTEST_MAX_UPLOADS_IN_FLIGHT = 2;
let uploadsInFlight = 0;
/** Back-test requests being received now, in this process (tests wait on it). */
export const backtestUploadsInFlight = () => uploadsInFlight;

const policyRef = z.union([z.string().min(1).max(100), z.record(z.string(), z.unknown())]);
const BodySchema = z.strictObject({
  /** A policy document, or a stored version name, "active" or "default". */
  policy: policyRef,
  compare: policyRef.optional(),
  input: z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('events'), from: z.iso.datetime({ offset: true }), to: z.iso.datetime({ offset: true }) }),
    z.strictObject({ type: z.literal('jsonl'), text: z.string().min(1) }),
  ]),
});

function present(r: BacktestRow, withSummary = true) {
  const progress = r.status === 'succeeded' ? 100 : r.total && r.total > 0 ? Math.min(99, Math.floor((r.processed / r.total) * 100)) : 0;
  return {
    id: r.id,
    status: r.status,
    progress,
    processed: r.processed,
    total: r.total,
    policy: r.policy.version,
    compare: r.compare?.version ?? null,
    input: r.input,
    createdAt: new Date(r.created_at).toISOString(),
    startedAt: r.started_at ? new Date(r.started_at).toISOString() : null,
    finishedAt: r.finished_at ? new Date(r.finished_at).toISOString() : null,
    ...(r.status === 'failed' ? { error: r.error } : {}),
    ...(withSummary && r.status === 'succeeded' ? { summary: r.summary } : {}),
  };
}

/**
 * Back-test jobs: POST queues a replay of a candidate policy over stored login events or an
 * uploaded JSONL text; GET follows its progress and returns the summary when done. Mounted at
 * /api/risk/backtests.
 */
export function riskBacktestRoutes(s: Services) {
  const app = new Hono<Env>();
  const store = createBacktestStore(s.db, s.clock);
  /** Creates the row unless the account is at its bound; serialised per account, so parallel posts cannot all pass the count. */
  const createBounded = (d: Parameters<typeof store.create>[0] & { createdBy: string }) =>
    s.db.tx(async (q) => {
      await q.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`risk_backtests:${d.createdBy}`]);
      const { rows } = await q.query<{ n: number }>(
        // A job whose worker died (a running row gone silent) or that a restart lost (queued for
        // an hour) no longer holds one of the account's places.
        `SELECT count(*)::int AS n FROM risk_backtests
          WHERE created_by = $1
            AND ((status = 'queued' AND created_at >= $3) OR (status = 'running' AND heartbeat_at >= $2))`,
        [d.createdBy, new Date(s.clock.now() - STALE_MS), new Date(s.clock.now() - 3_600_000)],
      );
      if ((rows[0]?.n ?? 0) >= BACKTEST_MAX_ACTIVE_PER_USER)
        throw new AppError('RATE_LIMITED', { detail: `At most ${BACKTEST_MAX_ACTIVE_PER_USER} back-tests of one account may be queued or running; wait for one to finish.`, headers: { 'Retry-After': '30' } });
      return createBacktestStore(q, s.clock).create(d);
    });
  const maxBytes = s.config.BACKTEST_MAX_UPLOAD_BYTES;

  const resolve = async (ref: string | Record<string, unknown>, field: string): Promise<PolicyDocument> => {
    try {
      if (typeof ref !== 'string') return parsePolicy(ref, field);
      if (ref === 'default') return DEFAULT_POLICY;
      return await policyFromDb(s.db, ref);
    } catch (e) {
      if (e instanceof PolicySourceError || e instanceof RiskPolicyError) throw new AppError('VALIDATION_FAILED', { detail: `${field}: ${e.message}` });
      throw e;
    }
  };

  app.post(
    '/',
    // The global 64 KiB cap is lifted for this path in app.ts; uploads get their own bound.
    // The JSONL travels as a JSON string: quotes and newlines are escaped to two characters, so the
    // body may be up to twice the text; the text itself is held to maxBytes below.
    bodyLimit({ maxSize: 2 * maxBytes + 64 * 1024, onError: () => { throw new AppError('PAYLOAD_TOO_LARGE'); } }),
    async (c) => {
      const admin = await requirePermission(c, s, PERMISSION);
      if (uploadsInFlight >= BACKTEST_MAX_UPLOADS_IN_FLIGHT)
        throw new AppError('RATE_LIMITED', { detail: 'Other back-test requests are being received; try again shortly.', headers: { 'Retry-After': '5' } });
      uploadsInFlight++;
      try {
        return await receive(c, admin);
      } finally {
        uploadsInFlight--;
      }
    },
  );

  /** Reads, checks and stores one back-test request, then queues its job. */
  async function receive(c: Context<Env>, admin: Principal) {
    const b = await readJson(c, BodySchema);
    const policy = await resolve(b.policy, 'policy');
    const compare = b.compare === undefined ? null : await resolve(b.compare, 'compare');
    let total: number | null;
    let id: string;
    if (b.input.type === 'jsonl') {
      const bytes = Buffer.byteLength(b.input.text);
      if (bytes > maxBytes) throw new AppError('PAYLOAD_TOO_LARGE', { detail: `input.text: at most ${maxBytes} bytes` });
      let lines = 0;
      for (let i = b.input.text.indexOf('\n'); i !== -1; i = b.input.text.indexOf('\n', i + 1)) lines++;
      if (!b.input.text.endsWith('\n')) lines++;
      total = lines;
      id = await createBounded({ policy, compare, input: { type: 'jsonl', bytes, lines }, text: b.input.text, total, createdBy: admin.identityId });
    } else {
      const from = Date.parse(b.input.from);
      const to = Date.parse(b.input.to);
      if (!(to > from)) throw new AppError('VALIDATION_FAILED', { detail: 'input: from must be before to' });
      if (to - from > MAX_RANGE_DAYS * 86_400_000) throw new AppError('VALIDATION_FAILED', { detail: `input: at most ${MAX_RANGE_DAYS} days` });
      const { rows } = await s.db.query<{ n: number | string }>('SELECT count(*) AS n FROM login_events WHERE created_at >= $1 AND created_at < $2', [new Date(from), new Date(to)]);
      total = Number(rows[0]?.n ?? 0);
      id = await createBounded({
        policy, compare, input: { type: 'events', from: new Date(from).toISOString(), to: new Date(to).toISOString() }, text: null, total, createdBy: admin.identityId,
      });
    }
    // The row as created: a fast worker may already be running it by the time we answer.
    const row = await store.get(id);
    try {
      await s.jobs.enqueue(s.config.BACKTEST_QUEUE, BACKTEST_JOB, { id }, { jobId: `backtest-${id}`, attempts: 1 });
    } catch (err) {
      await store.fail(id, 'could not be queued');
      throw new AppError('SERVICE_UNAVAILABLE', { cause: err });
    }
    await s.audit.append({ type: 'backtest.requested', actor: admin.identityId, subject: id, reason: 'ADMIN', data: { policy: policy.version, compare: compare?.version ?? null, input: b.input.type } });
    c.header('Location', `/api/risk/backtests/${id}`);
    return c.json(present(row!), 202);
  }

  app.get('/', async (c) => {
    await requirePermission(c, s, PERMISSION);
    const raw = c.req.query('limit') ?? '20';
    const limit = /^\d{1,3}$/.test(raw) ? Math.min(100, Math.max(1, Number(raw))) : null;
    if (limit === null) throw new AppError('VALIDATION_FAILED', { detail: 'limit: an integer from 1 to 100' });
    c.header('Cache-Control', 'no-store');
    return c.json({ items: (await store.list(limit)).map((r) => present(r, false)) });
  });

  app.get('/:id', async (c) => {
    await requirePermission(c, s, PERMISSION);
    const id = c.req.param('id');
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) throw new AppError('NOT_FOUND');
    const row = await store.get(id);
    if (!row) throw new AppError('NOT_FOUND');
    c.header('Cache-Control', 'no-store');
    return c.json(present(row));
  });

  return app;
}

const obj = (description: string) => ({ description, schema: { jsonSchema: { type: 'object' } } });
const BACKTEST_ERRORS: ErrorCode[] = ['UNAUTHENTICATED', 'PERMISSION_DENIED', 'STEP_UP_REQUIRED'];

export const riskBacktestDocs = routeDocs('/api/risk/backtests', 'Risk', {
  'POST /': {
    summary: 'Back-test a policy on stored login events or an uploaded JSONL file, as a job (VIEW_RISK)',
    description: 'Replays recorded logins in time order through the real signal code with its own history; the body may exceed 64 KiB up to BACKTEST_MAX_UPLOAD_BYTES (JSONL uploads). One account may have at most 3 jobs queued or running; more answer 429 RATE_LIMITED.',
    auth: 'session',
    body: BodySchema,
    maxBodyBytes: 2 * 8 * 1024 * 1024 + 64 * 1024, // with the default BACKTEST_MAX_UPLOAD_BYTES (8 MiB of JSONL text)
    responses: { 202: obj('The queued job: id, status, progress') },
    errors: [...BACKTEST_ERRORS, 'UNSUPPORTED_MEDIA_TYPE', 'CROSS_SITE_REQUEST', 'NOT_FOUND', 'RATE_LIMITED'],
  },
  'GET /': {
    summary: 'Recent back-test jobs (VIEW_RISK)',
    auth: 'session',
    responses: { 200: obj('`items`: jobs without their summaries') },
    errors: BACKTEST_ERRORS,
  },
  'GET /:id': {
    summary: 'One back-test job: status, progress % and, when done, the summary (decision mix, confusion matrix, per kind and per reason, diff) (VIEW_RISK)',
    auth: 'session',
    responses: { 200: obj('The job') },
    errors: [...BACKTEST_ERRORS, 'NOT_FOUND'],
  },
});
