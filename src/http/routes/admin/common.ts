import { z } from 'zod';
import { AppError } from '../../../errors.ts';
import type { ResponseDoc } from '../../openapi/doc.ts';

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
