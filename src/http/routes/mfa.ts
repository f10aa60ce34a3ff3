import { Hono } from 'hono';
import { z } from 'zod';
import { readJson } from '../body.ts';
import { requireFreshMfa, requirePrincipal } from '../middleware/auth.ts';
import { routeDocs } from '../openapi/doc.ts';
import { ENROLMENT_MOUNT, METHODS } from '../../authn/methods/registry.ts';
import { factorChanged, FRESH, obj } from '../../authn/methods/enrolment.ts';
import type { Env, Services } from '../services.ts';

/** Methods' routes mounted beside the factor list. */
const enrolment = () => METHODS.flatMap((m) => (m.routes && (m.routes.mount ?? ENROLMENT_MOUNT) === ENROLMENT_MOUNT ? [m.routes] : []));

const Label = z.object({ label: z.string().trim().min(1).max(100) }).strict();

/** Each method's enrolment routes (src/authn/methods/<method>/routes.ts) are mounted here, beside the factor list. */
export const mfaDocs = routeDocs('/auth/mfa', 'Factors', {
  'GET /': { summary: "The caller's second factors", auth: 'session', responses: { 200: { description: '`[{ id, type, label, createdAt, lastUsedAt }]`', schema: { jsonSchema: { type: 'array', items: { type: 'object' } } } } }, errors: ['UNAUTHENTICATED'] },
  ...Object.assign({}, ...enrolment().map((r) => r.docs)),
  'PATCH /:id': { summary: 'Rename a factor', auth: 'session', body: Label, responses: { 200: obj('The factor') }, errors: ['UNAUTHENTICATED', 'MFA_FACTOR_NOT_FOUND'] },
  'DELETE /:id': {
    summary: 'Remove a factor (fresh MFA needed)',
    auth: 'session',
    query: z.object({ endOtherSessions: z.enum(['true', 'false']).optional().describe('`true` also signs every other session out') }),
    responses: { 204: { description: 'Removed' } },
    errors: [...FRESH, 'MFA_FACTOR_NOT_FOUND'],
  },
});

/** Second-factor management for the signed-in user; every change is audited and mailed to them. */
export function mfaRoutes(s: Services) {
  const app = new Hono<Env>();

  app.get('/', async (c) => {
    const p = await requirePrincipal(c, s);
    return c.json(await s.factors.list(p.identityId));
  });

  for (const r of enrolment()) app.route('/', r.app(s));

  app.patch('/:id', async (c) => {
    const p = await requirePrincipal(c, s);
    const b = await readJson(c, Label);
    const f = await s.factors.rename(p.identityId, c.req.param('id'), b.label);
    await s.audit.append({ type: 'mfa.renamed', actor: p.identityId, subject: f.id, reason: f.type.toUpperCase() });
    return c.json(f);
  });

  /** `?endOtherSessions=true` also signs every other session out (e.g. a lost phone). */
  app.delete('/:id', async (c) => {
    const p = await requireFreshMfa(c, s);
    const f = await s.factors.remove(p.identityId, c.req.param('id'));
    await factorChanged(s, p.identityId, f.type, f.id, 'removed');
    if (c.req.query('endOtherSessions') === 'true') await s.sessions.revokeAllFor(p.identityId, 'factor_removed', p.sessionId);
    return c.body(null, 204);
  });

  return app;
}
