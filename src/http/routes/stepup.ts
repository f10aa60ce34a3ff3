import { Hono } from 'hono';
import { setCookie } from 'hono/cookie';
import { z } from 'zod';
import { readJson } from '../body.ts';
import { deviceId } from '../middleware/client.ts';
import { requirePrincipal, sessionCookieName } from '../middleware/auth.ts';
import { presentFlow, presentSession } from '../present.ts';
import { outcomeError, StepUpEventSchema } from './login.ts';
import type { Env, Services } from '../services.ts';

const StartSchema = z
  .object({
    acr_values: z.string().max(200).optional(),
    max_age: z.number().int().nonnegative().optional(),
    permission: z.string().min(1).max(128).optional(),
    returnTokens: z.boolean().optional(),
  })
  .strict();

/** RFC 9470 step-up of the caller's live session. */
export function stepUpRoutes(s: Services) {
  const app = new Hono<Env>();
  const secure = s.config.secureCookies;

  app.post('/', async (c) => {
    const b = await readJson(c, StartSchema);
    const p = await requirePrincipal(c, s);
    const row = await s.stepup.start(
      p,
      { acrValues: b.acr_values, maxAge: b.max_age, permission: b.permission },
      { deviceId: deviceId(c, secure, false), ip: c.get('clientIp'), returnTokens: b.returnTokens ?? c.get('via') === 'bearer' },
    );
    c.header('Cache-Control', 'no-store');
    return c.json(presentFlow(row), 201);
  });

  app.get('/:id', async (c) => {
    const p = await requirePrincipal(c, s);
    return c.json(presentFlow(await s.stepup.ownFlow(p, c.req.param('id'))));
  });

  app.post('/:id', async (c) => {
    const p = await requirePrincipal(c, s);
    const event = await readJson(c, StepUpEventSchema);
    const { flow, completion } = await s.stepup.submit(p, c.req.param('id'), event);
    const err = outcomeError(flow);
    if (err) throw err;
    const body: Record<string, unknown> = { ...presentFlow(flow) };
    if (completion) {
      // The session id rotates: the old cookie and tokens stop working.
      if (c.get('via') === 'cookie')
        setCookie(c, sessionCookieName(secure), completion.sessionToken, {
          httpOnly: true,
          secure,
          sameSite: 'Lax',
          path: '/',
          expires: new Date(completion.session.absoluteExpiresAt),
        });
      const { id: _id, ...session } = presentSession(completion.session);
      body.session = session;
      if (completion.tokens) body.tokens = completion.tokens;
    }
    c.header('Cache-Control', 'no-store');
    return c.json(body);
  });

  return app;
}
