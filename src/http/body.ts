import type { Context } from 'hono';
import type { z } from 'zod';
import { AppError } from '../errors.ts';

/** Parse a JSON body (or an empty one as {}) against a schema; errors name the fields. */
export async function readJson<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  const text = await c.req.text();
  let raw: unknown = {};
  if (text.trim() !== '') {
    const ct = c.req.header('content-type') ?? '';
    if (!/^application\/(.+\+)?json\b/i.test(ct)) throw new AppError('UNSUPPORTED_MEDIA_TYPE');
    try {
      raw = JSON.parse(text);
    } catch {
      throw new AppError('VALIDATION_FAILED', { detail: 'The body is not valid JSON.' });
    }
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const detail = r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
    throw new AppError('VALIDATION_FAILED', { detail });
  }
  return r.data;
}
