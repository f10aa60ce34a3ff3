import { Hono } from 'hono';
import { AppError } from '../../errors.ts';
import { requirePrincipal } from '../middleware/auth.ts';
import { routeDocs } from '../openapi/doc.ts';
import type { Env, Services } from '../services.ts';

export const devicesDocs = routeDocs('/auth/devices', 'Remembered devices', {
  'GET /': {
    summary: "The caller's remembered devices",
    description: 'Devices the user chose to remember after a passed step-up: `[{ id, name, country, firstSeenAt, lastSeenAt, expiresAt }]`. A remembered device lowers the risk score of a login from it; it never adds a factor.',
    auth: 'session',
    responses: { 200: { description: 'The live remembered devices, most recently used first', schema: { jsonSchema: { type: 'array', items: { type: 'object' } } } } },
    errors: ['UNAUTHENTICATED'],
  },
  'DELETE /:id': {
    summary: 'Forget a remembered device',
    description: 'The next login from it is scored as any other (stepped up again at the same risk).',
    auth: 'session',
    responses: { 204: { description: 'Forgotten' } },
    errors: ['UNAUTHENTICATED', 'NOT_FOUND'],
  },
});

/** The signed-in user's remembered devices: listed and revocable (issue 12 item 5). */
export function devicesRoutes(s: Services) {
  const app = new Hono<Env>();
  app.get('/', async (c) => {
    const p = await requirePrincipal(c, s);
    c.header('Cache-Control', 'no-store');
    return c.json(await s.remembered.list(p.identityId));
  });
  app.delete('/:id', async (c) => {
    const p = await requirePrincipal(c, s);
    // Someone else's device answers like a missing one.
    if (!(await s.remembered.forget(p.identityId, c.req.param('id')))) throw new AppError('NOT_FOUND');
    return c.body(null, 204);
  });
  return app;
}
