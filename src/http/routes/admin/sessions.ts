import { Hono } from 'hono';
import type { Context } from 'hono';
import { z } from 'zod';
import { readQuery } from '../../query.ts';
import { requirePermission } from '../../middleware/auth.ts';
import { AppError } from '../../../errors.ts';
import { atKey, cursor } from '../../../db/cursor.ts';
import { parseIp } from '../../../risk/cidr.ts';
import { routeDocs } from '../../openapi/doc.ts';
import { ADMIN_ERRORS, Cursor, idParam, Limit, pageDoc, UuidQuery } from './common.ts';
import type { Env, Services } from '../../services.ts';

/* /api/sessions (MANAGE_USERS): every live session, filtered; revoke, lock and unlock one. */

const IpOrSubnet = z.string().max(64).refine((v) => {
  const [addr, len, extra] = v.split('/');
  const ip = extra === undefined ? parseIp(addr) : null;
  return !!ip && (len === undefined || (/^\d{1,3}$/.test(len) && Number(len) <= (ip.family === 4 ? 32 : 128)));
}, 'an IP address or a CIDR subnet');
const Seconds = z.coerce.number().int().min(0).max(10 * 365 * 86400);

export const SessionListQuerySchema = z.strictObject({
  userId: UuidQuery.optional().describe('Only this user’s sessions'),
  ip: IpOrSubnet.optional().describe('Client address, or a subnet such as 203.0.113.0/24'),
  device: z.string().min(1).max(128).optional().describe('Device id (the `device` cookie or `X-Device-Id`)'),
  minAgeSeconds: Seconds.optional().describe('Only sessions created at least this long ago'),
  maxAgeSeconds: Seconds.optional().describe('Only sessions created at most this long ago'),
  cursor: Cursor,
  limit: Limit,
});

const E = ADMIN_ERRORS;
const done = { 204: { description: 'Done' } };
export const sessionAdminDocs = routeDocs('/api/sessions', 'Administration', {
  'GET /': { summary: 'Live sessions of all users (oldest first), filtered by user, IP, device and age, in cursor pages', auth: 'session', query: SessionListQuerySchema, responses: { 200: pageDoc('sessions `{ id, userId, email, device, ip, country, amr, acr, state, createdAt, lastSeenAt, idleExpiresAt, expiresAt }`') }, errors: [...E, 'INVALID_CURSOR'] },
  'DELETE /:id': { summary: 'Revoke a session (and its tokens, at once)', auth: 'session', responses: { 204: { description: 'Revoked' } }, errors: [...E, 'NOT_FOUND'] },
  'POST /:id/lock': { summary: 'Lock a session', auth: 'session', responses: done, errors: [...E, 'NOT_FOUND'] },
  'POST /:id/unlock': { summary: 'Unlock a session', auth: 'session', responses: done, errors: [...E, 'NOT_FOUND'] },
});

interface Row {
  id: string; identity_id: string; email: string; device_id: string | null; ip: string | null; country: string | null;
  amr: string[]; acr: string; state: string; created_at: Date; last_seen_at: Date; idle_expires_at: Date; absolute_expires_at: Date; at_key: string;
}

const present = (r: Row) => ({
  id: r.id,
  userId: r.identity_id,
  email: r.email,
  // Like the user's own listing: enough of the device id to tell devices apart, not to replay it.
  device: r.device_id ? `…${r.device_id.slice(-6)}` : null,
  ip: r.ip,
  country: r.country,
  amr: r.amr,
  acr: r.acr,
  state: r.state,
  createdAt: r.created_at.toISOString(),
  lastSeenAt: r.last_seen_at.toISOString(),
  idleExpiresAt: r.idle_expires_at.toISOString(),
  expiresAt: r.absolute_expires_at.toISOString(),
});

export function sessionAdminRoutes(s: Services) {
  const app = new Hono<Env>();
  const guard = (c: Context<Env>) => requirePermission(c, s, 'MANAGE_USERS');

  app.get('/', async (c) => {
    await guard(c);
    const q = readQuery(c, SessionListQuerySchema);
    const now = s.clock.now();
    const params: unknown[] = [new Date(now)];
    const p = (v: unknown) => `$${params.push(v)}`;
    const where = ['s.revoked_at IS NULL', 's.idle_expires_at > $1', 's.absolute_expires_at > $1'];
    if (q.userId) where.push(`s.identity_id = ${p(q.userId)}::uuid`);
    if (q.ip) where.push(q.ip.includes('/') ? `threshold_try_inet(s.ip) <<= ${p(q.ip)}::inet` : `threshold_try_inet(s.ip) = ${p(q.ip)}::inet`);
    if (q.device) where.push(`s.device_id = ${p(q.device)}`);
    if (q.minAgeSeconds !== undefined) where.push(`s.created_at <= ${p(new Date(now - q.minAgeSeconds * 1000))}`);
    if (q.maxAgeSeconds !== undefined) where.push(`s.created_at >= ${p(new Date(now - q.maxAgeSeconds * 1000))}`);
    if (q.cursor) {
      const k = cursor.timeId(q.cursor);
      where.push(`(s.created_at, s.id) > (${p(k.at)}::timestamptz, ${p(k.id)}::uuid)`);
    }
    const { rows } = await s.db.query<Row>(
      `SELECT s.id, s.identity_id, i.email, s.device_id, s.ip, s.country, s.amr, s.acr, s.state, s.created_at, s.last_seen_at,
              s.idle_expires_at, s.absolute_expires_at, ${atKey('s.created_at')} AS at_key
         FROM sessions s JOIN identities i ON i.id = s.identity_id
        WHERE ${where.join(' AND ')} ORDER BY s.created_at, s.id LIMIT ${p(q.limit + 1)}`,
      params,
    );
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    return c.json({ items: page.map(present), nextCursor: rows.length > q.limit && last ? cursor.encode([last.at_key, last.id]) : null });
  });

  app.delete('/:id', async (c) => {
    const admin = await guard(c);
    const id = idParam(c.req.param('id'));
    if (!(await s.sessions.revoke(id, 'admin_revoked'))) throw new AppError('NOT_FOUND');
    await s.audit.append({ type: 'session.revoked', actor: admin.identityId, subject: id, reason: 'ADMIN' });
    return c.body(null, 204);
  });

  for (const action of ['lock', 'unlock'] as const) {
    app.post(`/:id/${action}`, async (c) => {
      const admin = await guard(c);
      const id = idParam(c.req.param('id'));
      const ok = action === 'lock' ? await s.sessions.lock(id, 'admin') : await s.sessions.unlock(id);
      if (!ok) throw new AppError('NOT_FOUND');
      await s.audit.append({ type: `session.${action}ed`, actor: admin.identityId, subject: id, reason: 'ADMIN', data: { before: { locked: action === 'unlock' }, after: { locked: action === 'lock' } } });
      return c.body(null, 204);
    });
  }

  return app;
}
