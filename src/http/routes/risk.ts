import { Hono } from 'hono';
import type { Context } from 'hono';
import { z } from 'zod';
import { AppError, type ErrorCode } from '../../errors.ts';
import { routeDocs } from '../openapi/doc.ts';
import { readJsonValue } from '../body.ts';
import { requireFreshMfa, requirePermission } from '../middleware/auth.ts';
import { parseIp } from '../../risk/cidr.ts';
import { PolicyDocumentSchema } from '../../risk/policy.ts';
import { PolicyVersionSchema } from '../../risk/policy-store.ts';
import { addLabel } from '../../risk/labels.ts';
import { shadowReport } from '../../risk/shadow-report.ts';
import { simulate } from '../../risk/simulate.ts';
import type { Env, Services } from '../services.ts';
import type { AnyPrincipal as Principal } from '../../principals/types.ts';

/*
 * The security team's risk API (issue 8 §2-§4), mounted under /api/risk.
 * Permissions (db/migrations/0032): VIEW_RISK reads (events, policies, shadow report, simulate);
 * LABEL_RISK labels events; MANAGE_RISK creates, activates and shadows policies and demands MFA
 * proven within 15 minutes (an RFC 9470 challenge otherwise). ADMIN holds all three.
 * The zod schemas are exported for the OpenAPI document.
 */

const DECISION = z.enum(['allow', 'step_up', 'deny']);
const ISO = z.iso.datetime({ offset: true });

/** An address, or a subnet such as 203.0.113.0/24 (host bits allowed, as in most tools). */
const IpOrSubnet = z.string().max(64).refine((v) => {
  const [addr, len, extra] = v.split('/');
  const ip = extra === undefined && !addr.includes('%') ? parseIp(addr) : null;
  if (!ip) return false;
  return len === undefined || (/^\d{1,3}$/.test(len) && Number(len) <= (ip.family === 4 ? 32 : 128));
}, 'an IP address or a CIDR subnet');

export const RiskEventsQuerySchema = z.strictObject({
  user: z.string().min(1).max(254).optional().describe('identity id or email'),
  ip: IpOrSubnet.optional(),
  decision: DECISION.optional(),
  shadowDecision: DECISION.optional(),
  reason: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'a reason code such as NEW_DEVICE').optional(),
  policyVersion: PolicyVersionSchema.optional(),
  outcome: z.enum(['succeeded', 'failed', 'denied', 'locked', 'stepped_up']).optional(),
  label: z.enum(['fraud', 'legit', 'none']).optional(),
  from: ISO.optional(),
  to: ISO.optional(),
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

/** A new policy version: the engine's document schema, with a version name fit for URLs. */
export const RiskPolicyCreateSchema = PolicyDocumentSchema.and(z.object({ version: PolicyVersionSchema }));

export const RiskLabelSchema = z.strictObject({
  label: z.enum(['fraud', 'legit']),
  note: z.string().max(2000).optional(),
});

export const RiskSimulateSchema = z.strictObject({
  identifier: z.string().min(1).max(254),
  ip: z.string().max(64).refine((v) => parseIp(v) !== null, 'an IP address'),
  deviceId: z.string().regex(/^[A-Za-z0-9_-]{16,128}$/, '16-128 letters, digits, dash or underscore').optional(),
  userAgent: z.string().max(1000).optional(),
  at: ISO.optional(),
  /** Score under this stored version instead of the active one. */
  policyVersion: PolicyVersionSchema.optional(),
});

export const RiskShadowReportQuerySchema = z.strictObject({
  from: ISO.optional(),
  to: ISO.optional(),
  version: PolicyVersionSchema.optional(),
});

/** Bad input → VALIDATION_FAILED naming every field (`errors: [{field, message}]`). */
function check<T extends z.ZodType>(schema: T, raw: unknown): z.infer<T> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const errors = r.error.issues.map((i) => ({ field: i.path.join('.') || (i.code === 'unrecognized_keys' ? i.keys.join(',') : 'body'), message: i.message }));
  throw new AppError('VALIDATION_FAILED', { detail: errors.map((e) => `${e.field}: ${e.message}`).join('; '), extra: { errors } });
}

/** JSON body through the shared reader and input rule (body.ts), then `check` (with `errors`). */
async function body<T extends z.ZodType>(c: Context<Env>, schema: T): Promise<z.infer<T>> {
  return check(schema, await readJsonValue(c));
}

const MAX_REPORT_DAYS = 92;

const versionParam = (c: Context<Env>) => {
  const v = c.req.param('version') ?? '';
  if (!PolicyVersionSchema.safeParse(v).success) throw new AppError('NOT_FOUND', { detail: 'No risk policy has this version.' });
  return v;
};

/**
 * Stops a stolen or unattended admin session from changing what is enforced: MANAGE_RISK, and
 * MFA within 15 minutes even if the permission's stored requirement were loosened.
 */
async function requireRiskManager(c: Context<Env>, s: Services): Promise<Principal> {
  const p = await requirePermission(c, s, 'MANAGE_RISK');
  await requireFreshMfa(c, s, 900);
  return p;
}

export function riskRoutes(s: Services) {
  const app = new Hono<Env>();
  const { policies, events } = s.risk;

  app.get('/policies', async (c) => {
    await requirePermission(c, s, 'VIEW_RISK');
    return c.json(await policies.list());
  });

  app.post('/policies', async (c) => {
    const p = await requireRiskManager(c, s);
    const doc = await body(c, RiskPolicyCreateSchema);
    const stored = await policies.create(doc, p.identityId);
    c.header('Location', `/api/risk/policies/${stored.version}`);
    return c.json(stored, 201);
  });

  app.get('/policies/:version', async (c) => {
    await requirePermission(c, s, 'VIEW_RISK');
    const p = await policies.get(versionParam(c));
    if (!p) throw new AppError('NOT_FOUND');
    return c.json(p);
  });

  app.post('/policies/:version/activate', async (c) => {
    const p = await requireRiskManager(c, s);
    const version = versionParam(c);
    const r = await policies.activate(version, p.identityId);
    return c.json({ active: version, previous: r.previous });
  });

  app.post('/policies/:version/shadow', async (c) => {
    const p = await requireRiskManager(c, s);
    const version = versionParam(c);
    const r = await policies.setShadow(version, p.identityId);
    return c.json({ shadow: version, previous: r.previous });
  });

  app.delete('/shadow', async (c) => {
    const p = await requireRiskManager(c, s);
    await policies.clearShadow(p.identityId);
    return c.body(null, 204);
  });

  app.get('/shadow/report', async (c) => {
    await requirePermission(c, s, 'VIEW_RISK');
    const q = check(RiskShadowReportQuerySchema, c.req.query());
    const to = q.to ? new Date(q.to) : new Date(s.clock.now());
    const from = q.from ? new Date(q.from) : new Date(to.getTime() - 24 * 3600_000);
    if (from >= to) throw new AppError('VALIDATION_FAILED', { detail: 'from: must be before to', extra: { errors: [{ field: 'from', message: 'must be before to' }] } });
    // Bounded so one request cannot make the database sort years of events.
    if (to.getTime() - from.getTime() > MAX_REPORT_DAYS * 86_400_000) {
      throw new AppError('VALIDATION_FAILED', { detail: `from: at most ${MAX_REPORT_DAYS} days before to`, extra: { errors: [{ field: 'from', message: `at most ${MAX_REPORT_DAYS} days before to` }] } });
    }
    return c.json(await shadowReport(s.db, { from, to, shadowVersion: q.version }));
  });

  app.get('/events', async (c) => {
    await requirePermission(c, s, 'VIEW_RISK');
    const q = check(RiskEventsQuerySchema, c.req.query());
    const { cursor, limit, from, to, ...f } = q;
    return c.json(await events.list({ ...f, from: from ? new Date(from) : undefined, to: to ? new Date(to) : undefined }, { cursor, limit }));
  });

  app.get('/events/:id', async (c) => {
    await requirePermission(c, s, 'VIEW_RISK');
    const e = await events.get(c.req.param('id'));
    if (!e) throw new AppError('NOT_FOUND');
    return c.json(e);
  });

  app.post('/events/:id/labels', async (c) => {
    const p = await requirePermission(c, s, 'LABEL_RISK');
    const b = await body(c, RiskLabelSchema);
    const id = c.req.param('id');
    const l = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)
      ? await addLabel(s.db, { eventId: id, label: b.label, source: 'analyst', actor: p.identityId, note: b.note ?? null, at: new Date(s.clock.now()) }, s.audit)
      : null;
    if (!l) throw new AppError('NOT_FOUND');
    return c.json(l, 201);
  });

  // Reads only: no login, no event, no audit row (an audit row would be a write).
  app.post('/simulate', async (c) => {
    await requirePermission(c, s, 'VIEW_RISK');
    const b = await body(c, RiskSimulateSchema);
    let policy = null;
    if (b.policyVersion) {
      const stored = await policies.get(b.policyVersion);
      if (!stored) throw new AppError('NOT_FOUND', { detail: `No risk policy version ${b.policyVersion}.` });
      const parsed = PolicyDocumentSchema.safeParse(stored.document);
      if (!parsed.success) throw new AppError('VALIDATION_FAILED', { detail: `Stored policy ${b.policyVersion} does not pass the policy schema.` });
      policy = parsed.data;
    }
    const at = b.at ? Date.parse(b.at) : s.clock.now();
    return c.json(await simulate({ db: s.db, scorer: s.risk.scorer() }, { identifier: b.identifier, ip: b.ip, deviceId: b.deviceId ?? null, userAgent: b.userAgent, at }, policy));
  });

  return app;
}

const VIEW: ErrorCode[] = ['UNAUTHENTICATED', 'PERMISSION_DENIED', 'STEP_UP_REQUIRED'];
const MANAGE: ErrorCode[] = [...VIEW, 'NOT_FOUND', 'UNSUPPORTED_MEDIA_TYPE', 'CROSS_SITE_REQUEST'];
const json = (description: string) => ({ description, schema: { jsonSchema: { type: 'object' } } });

export const riskDocs = routeDocs('/api/risk', 'Risk', {
  'GET /policies': { summary: 'List risk policy versions (VIEW_RISK)', auth: 'session', responses: { 200: { description: 'Versions, newest first, with which is active and which is in shadow', schema: { jsonSchema: { type: 'array' } } } }, errors: VIEW },
  'POST /policies': { summary: 'Create an immutable policy version (MANAGE_RISK, MFA within 15 minutes)', auth: 'session', body: RiskPolicyCreateSchema, responses: { 201: json('The stored version') }, errors: [...MANAGE, 'CONFLICT'] },
  'GET /policies/:version': { summary: 'Read one policy version (VIEW_RISK)', auth: 'session', responses: { 200: json('The version and its document') }, errors: [...VIEW, 'NOT_FOUND'] },
  'POST /policies/:version/activate': { summary: 'Enforce this version from the next login (MANAGE_RISK, fresh MFA; audited)', auth: 'session', responses: { 200: json('The activated version') }, errors: MANAGE },
  'POST /policies/:version/shadow': { summary: 'Score every live login with this version too, never enforced (MANAGE_RISK, fresh MFA; audited)', auth: 'session', responses: { 200: json('The shadow version') }, errors: MANAGE },
  'DELETE /shadow': { summary: 'Stop shadow scoring (MANAGE_RISK, fresh MFA; audited)', auth: 'session', responses: { 204: { description: 'No shadow policy' } }, errors: MANAGE },
  'GET /shadow/report': { summary: 'Active vs shadow decisions over a time range (VIEW_RISK)', auth: 'session', query: RiskShadowReportQuerySchema, responses: { 200: json('Decision matrix, labelled outcomes and examples per disagreeing cell') }, errors: VIEW },
  'GET /events': { summary: 'Risk decisions of login attempts, filtered, newest first, with cursor pages (VIEW_RISK)', auth: 'session', query: RiskEventsQuerySchema, responses: { 200: json('`items` (each with its explanation) and `next` cursor') }, errors: VIEW },
  'GET /events/:id': { summary: 'One decision: signals, contributions, policy, what the user did next, labels, explanation (VIEW_RISK)', auth: 'session', responses: { 200: json('The event') }, errors: [...VIEW, 'NOT_FOUND'] },
  'POST /events/:id/labels': { summary: 'Label a login attempt fraud or legit (LABEL_RISK; audited; feeds back-tests)', auth: 'session', body: RiskLabelSchema, responses: { 201: json('The label and the event’s current label') }, errors: [...MANAGE] },
  'POST /simulate': { summary: 'The decision and explanation a policy would give one attempt now; writes nothing (VIEW_RISK)', auth: 'session', body: RiskSimulateSchema, responses: { 200: json('Decision, score, reasons and explanation') }, errors: [...VIEW, 'UNSUPPORTED_MEDIA_TYPE', 'CROSS_SITE_REQUEST'] },
});
