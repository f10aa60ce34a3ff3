import { z } from 'zod';
import { AppError } from '../../../errors.ts';
import type { ResponseDoc } from '../../openapi/doc.ts';
import type { Services } from '../../services.ts';
import type { AnyPrincipal } from '../../../principals/types.ts';

/** What every admin route may answer: no session, no permission, or a stale one for a permission that needs fresh MFA. */
export const ADMIN_ERRORS = ['UNAUTHENTICATED', 'PERMISSION_DENIED', 'STEP_UP_REQUIRED'] as const;

export const jsonDoc = (description: string, type: 'object' | 'array' = 'object'): ResponseDoc => ({
  description,
  schema: { jsonSchema: type === 'array' ? { type: 'array', items: { type: 'object' } } : { type: 'object' } },
});

/** A page: `{ items, nextCursor }` (null on the last page). */
export const pageDoc = (what: string): ResponseDoc => ({
  description: `\`{ items, nextCursor }\`: ${what}; pass \`nextCursor\` as \`cursor\` for the next page (null on the last)`,
  schema: { jsonSchema: { type: 'object', properties: { items: { type: 'array', items: { type: 'object' } }, nextCursor: { type: ['string', 'null'] } } } },
});

export const Limit = z.coerce.number().int().min(1).max(200).default(50).describe('Page size, 1-200 (default 50)');
export const Cursor = z.string().max(200).optional().describe('`nextCursor` of the previous page');

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const UuidQuery = z.string().regex(UUID_RE, 'a uuid');

/** A path id that is not a uuid names nothing: 404, without a query. */
export function idParam(v: string): string {
  if (!UUID_RE.test(v)) throw new AppError('NOT_FOUND');
  return v;
}

/**
 * What the caller may hand out or act upon: the permissions their grants hold globally (ADMIN:
 * all), narrowed to the credential's scope for an API key. Stops privilege escalation through
 * the admin API (src/http/routes/admin/users.ts, roles.ts).
 */
export async function reachOf(s: Services, p: AnyPrincipal): Promise<Set<string>> {
  const who = p.kind === 'session' ? p.identityId : (p.authority ?? p.identityId);
  const held = (await s.rbac.permissionsOf(who)).map((x) => x.name);
  const scope = p.kind === 'session' ? undefined : p.scope;
  return new Set(scope ? held.filter((x) => scope.includes(x)) : held);
}

/** Every permission an identity holds, globally or in any namespace it has a binding or grant in. */
export async function heldAnywhere(s: Services, identityId: string): Promise<string[]> {
  const b = await s.rbac.bindingsOf(identityId);
  const namespaces = new Set([...b.roles, ...b.permissions].map((x) => x.namespace).filter((n): n is string => n !== null));
  const lists = await Promise.all([undefined, ...namespaces].map((n) => s.rbac.permissionsOf(identityId, n)));
  return [...new Set(lists.flat().map((x) => x.name))];
}

/** 403 naming what the caller lacks, when `wanted` reaches past `reach`. */
export function assertWithin(reach: Set<string>, wanted: readonly string[], what: string): void {
  const beyond = [...new Set(wanted.filter((x) => !reach.has(x)))].sort();
  if (beyond.length) throw new AppError('PERMISSION_DENIED', { detail: `${what}: ${beyond.join(', ')}` });
}
