import { Hono } from 'hono';
import { userDocs, userRoutes } from './admin/users.ts';
import { sessionAdminDocs, sessionAdminRoutes } from './admin/sessions.ts';
import { roleDocs, roleRoutes } from './admin/roles.ts';
import { auditDocs, auditRoutes } from './admin/audit.ts';
import type { Env, Services } from '../services.ts';

/**
 * The admin API under /api (issue 11 §3): users, sessions, roles and permissions, audit, each in its
 * own file under admin/. Every route checks its permission with requirePermission (403 without
 * it, 401 without a session) and audits every change with before/after.
 */
export const adminDocs = [...userDocs, ...sessionAdminDocs, ...roleDocs, ...auditDocs];

export function adminRoutes(s: Services) {
  const app = new Hono<Env>();
  app.route('/users', userRoutes(s));
  app.route('/sessions', sessionAdminRoutes(s));
  app.route('/audit', auditRoutes(s));
  app.route('/', roleRoutes(s));
  return app;
}
