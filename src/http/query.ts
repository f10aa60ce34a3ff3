import type { Context } from 'hono';
import type { z } from 'zod';
import { AppError } from '../errors.ts';

/** The query string against a (strict) schema; a repeated or unknown parameter is a 400 naming it. */
export function readQuery<T extends z.ZodType>(c: Context, schema: T): z.infer<T> {
  const all = c.req.queries();
  const repeated = Object.keys(all).filter((k) => all[k].length > 1);
  if (repeated.length) throw new AppError('VALIDATION_FAILED', { detail: `${repeated.join(', ')}: give each parameter once` });
  const raw = c.req.query();
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const detail = r.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || (i.code === 'unrecognized_keys' ? i.keys.join(',') : 'query')}: ${i.message}`)
    .join('; ');
  throw new AppError('VALIDATION_FAILED', { detail });
}
