import type { Context } from 'hono';
import type { z } from 'zod';
import { AppError } from '../errors.ts';
import { assertStorable, assertUniqueMembers } from './input.ts';

/** Issues shown in one answer: a strict schema given 10,000 unknown members says so once, briefly. */
const MAX_ISSUES = 5;
const MAX_DETAIL = 1000;

/**
 * The request's JSON body (an empty one as {}), checked by the one input rule (input.ts): every
 * string and member name storable, and no member named twice in one object. Every route that
 * reads a JSON body goes through here, so no route can skip the rule with a reader of its own.
 */
export async function readJsonValue(c: Context): Promise<unknown> {
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
    assertUniqueMembers(text);
  }
  assertStorable(raw);
  return raw;
}

/** Parse a JSON body (readJsonValue) against a schema; errors name the fields. */
export async function readJson<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  const raw = await readJsonValue(c);
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.slice(0, MAX_ISSUES).map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
    if (r.error.issues.length > MAX_ISSUES) issues.push(`and ${r.error.issues.length - MAX_ISSUES} more`);
    const detail = issues.join('; ');
    throw new AppError('VALIDATION_FAILED', { detail: detail.length > MAX_DETAIL ? `${detail.slice(0, MAX_DETAIL)}…` : detail });
  }
  return r.data;
}

/**
 * An `application/x-www-form-urlencoded` body (an IdP's auto-posted form, e.g. the SAML HTTP-POST
 * binding) against a schema of string fields, under the same input rule as JSON bodies: storable
 * text, and no field named twice (which value a reader takes would otherwise be a choice an
 * attacker makes).
 */
export async function readForm<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  const type = (c.req.header('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new AppError('UNSUPPORTED_MEDIA_TYPE', { detail: 'Send application/x-www-form-urlencoded.' });
  const fields: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(await c.req.text())) {
    if (Object.hasOwn(fields, k)) throw new AppError('VALIDATION_FAILED', { detail: `${k}: given more than once` });
    fields[k] = v;
  }
  assertStorable(fields);
  const r = schema.safeParse(fields);
  if (!r.success) {
    const detail = r.error.issues.slice(0, MAX_ISSUES).map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
    throw new AppError('VALIDATION_FAILED', { detail: detail.slice(0, MAX_DETAIL) });
  }
  return r.data;
}
