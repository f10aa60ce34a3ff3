import { Hono } from 'hono';
import type { Context } from 'hono';
import { stream } from 'hono/streaming';
import { z } from 'zod';
import { readQuery } from '../../query.ts';
import { requirePermission } from '../../middleware/auth.ts';
import { cursor } from '../../../db/cursor.ts';
import { exportAudit, listAudit, type AuditFilter } from '../../../audit/query.ts';
import { routeDocs } from '../../openapi/doc.ts';
import { ADMIN_ERRORS, Cursor, jsonDoc, Limit, pageDoc } from './common.ts';
import type { Env, Services } from '../../services.ts';

/*
 * /api/audit (VIEW_AUDIT_LOGS): the hash-chained audit log, filtered, in newest-first cursor
 * pages; a bounded JSONL export in chain order; and the chain check `npm run audit:verify` runs.
 */

const ISO = z.iso.datetime({ offset: true });
/** The most rows one export answers; a larger log is exported in several calls (`afterSeq`). */
const EXPORT_MAX = 100_000;
const Filters = {
  actor: z.string().min(1).max(200).optional().describe('Who acted: an identity id, or `cli:<user>`'),
  subject: z.string().min(1).max(200).optional().describe('What it was about: an identity, session, role or permission'),
  type: z
    .string()
    .regex(/^[a-z][a-z0-9_]*\.([a-z][a-z0-9_]*|\*)$/, 'an event type such as login.failed, or login.*')
    .optional()
    .describe('An event type, or `noun.*` for all of a noun'),
  outcome: z.enum(['success', 'failure']).optional().describe('failure: refused, failed or detected attacks (`*.failed`, `*.denied`, `*.refused`, `refresh.reuse_detected`, locks of a flow)'),
  from: ISO.optional().describe('Inclusive'),
  to: ISO.optional().describe('Exclusive'),
};
export const AuditListQuerySchema = z.strictObject({ ...Filters, cursor: Cursor, limit: Limit });
export const AuditExportQuerySchema = z.strictObject({
  ...Filters,
  afterSeq: z.coerce.number().int().min(0).optional().describe('Continue after this `seq` (from a truncated export)'),
  limit: z.coerce.number().int().min(1).max(EXPORT_MAX).default(10_000).describe(`Most rows, 1-${EXPORT_MAX} (default 10000)`),
});

const E = ADMIN_ERRORS;
export const auditDocs = routeDocs('/api/audit', 'Administration', {
  'GET /': { summary: 'Audit events, newest first, filtered, in cursor pages (VIEW_AUDIT_LOGS)', auth: 'session', query: AuditListQuerySchema, responses: { 200: pageDoc('events `{ seq, id, at, type, actor, subject, reason, data, outcome, prevHash, hash }`') }, errors: [...E, 'INVALID_CURSOR'] },
  'GET /export': {
    summary: 'Audit events as JSONL in chain order, filtered like the list, bounded (VIEW_AUDIT_LOGS)',
    description: 'One event per line. When more rows match than `limit`, the last line is `{"truncated":true,"nextAfterSeq":N}`: ask again with `afterSeq=N`.',
    auth: 'session',
    query: AuditExportQuerySchema,
    responses: { 200: { description: 'application/x-ndjson, one event per line', contentType: 'application/x-ndjson', schema: { jsonSchema: { type: 'string' } } } },
    errors: [...E],
  },
  'GET /verify': { summary: 'Check the whole hash chain, as `npm run audit:verify` does (VIEW_AUDIT_LOGS)', auth: 'session', responses: { 200: jsonDoc('`{ ok, checked, brokenAt?, problem? }`: the first row modified, removed, inserted or reordered') }, errors: [...E] },
});

const filterOf = (q: AuditFilter): AuditFilter => ({ actor: q.actor, subject: q.subject, type: q.type, outcome: q.outcome, from: q.from, to: q.to });

export function auditRoutes(s: Services) {
  const app = new Hono<Env>();
  const guard = (c: Context<Env>) => requirePermission(c, s, 'VIEW_AUDIT_LOGS');

  app.get('/', async (c) => {
    await guard(c);
    const q = readQuery(c, AuditListQuerySchema);
    const page = await listAudit(s.db, filterOf(q), { before: q.cursor ? cursor.seq(q.cursor) : undefined, limit: q.limit });
    return c.json({ items: page.items, nextCursor: page.more && page.last !== null ? cursor.encode([page.last]) : null });
  });

  app.get('/export', async (c) => {
    const p = await guard(c);
    const q = readQuery(c, AuditExportQuerySchema);
    const filters = filterOf(q);
    c.header('Content-Type', 'application/x-ndjson; charset=utf-8');
    c.header('Cache-Control', 'no-store');
    c.header('Content-Disposition', 'attachment; filename="audit.jsonl"');
    return stream(c, async (out) => {
      let rows = 0;
      let last = q.afterSeq ?? 0;
      try {
        // One row past the bound tells a complete export from a truncated one.
        for await (const row of exportAudit(s.db, filters, { after: q.afterSeq, max: q.limit + 1 })) {
          if (rows === q.limit) {
            await out.write(`${JSON.stringify({ truncated: true, nextAfterSeq: last })}\n`);
            break;
          }
          await out.write(`${JSON.stringify(row)}\n`);
          rows++;
          last = row.seq;
          if (out.aborted) break;
        }
      } finally {
        // Audited however it ended: rows sent before a client went away were read all the same.
        await s.audit.append({ type: 'audit.exported', actor: p.identityId, reason: 'ADMIN', data: { filters, afterSeq: q.afterSeq ?? null, rows, aborted: out.aborted } });
      }
    }, async (err) => {
      s.logger.error({ err }, 'audit export failed');
    });
  });

  app.get('/verify', async (c) => {
    await guard(c);
    c.header('Cache-Control', 'no-store');
    return c.json(await s.audit.verify());
  });

  return app;
}
