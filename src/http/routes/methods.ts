import type { Hono } from 'hono';
import { MOUNTED_METHODS } from '../../authn/methods/registry.ts';
import { routeDocs } from '../openapi/doc.ts';
import type { Env, Services } from '../services.ts';

/**
 * Routes of methods mounted elsewhere than beside the factor list (a federated method's start and
 * callback routes). Enrolment routes are mounted by mfa.ts. None today: the shape is for `idp`.
 */
export const methodDocs = MOUNTED_METHODS.flatMap((m) => routeDocs(m.routes!.mount!, m.routes!.tag ?? m.id, m.routes!.docs));

export function mountMethodRoutes(app: Hono<Env>, s: Services): void {
  for (const m of MOUNTED_METHODS) app.route(m.routes!.mount!, m.routes!.app(s));
}
