import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.ts';
import { isStorableText } from '../db/text.ts';

/**
 * The one rule for text that reaches us from a client (JSON bodies, query strings, path
 * parameters): no NUL and no unpaired UTF-16 surrogate, and JSON no deeper than MAX_JSON_DEPTH.
 *
 * Why: Postgres cannot store such text as given (src/db/text.ts): NUL and `\uD800` escapes in
 * jsonb are a 500, and a lone surrogate sent as text is silently stored as U+FFFD, so whatever was
 * computed from the JavaScript string (an audit hash, a uniqueness check) no longer matches.
 * Headers need no check: Node's parser refuses NUL in them and decodes them as Latin-1, which
 * cannot produce a surrogate. Deep nesting is refused before anything recurses over it.
 */
export const MAX_JSON_DEPTH = 32;

const refuse = (field: string, why: string) => new AppError('VALIDATION_FAILED', { detail: `${field}: ${why}` });
const BAD_TEXT = 'must not contain NUL characters or unpaired UTF-16 surrogates';

/** A member name for an error message: itself when printable, else a neutral placeholder. */
const keyLabel = (k: string) => (isStorableText(k) && /^[\x20-\x7e]{1,64}$/.test(k) ? k : '(invalid member name)');

/**
 * Stops unstorable text and stack-deep nesting anywhere in a parsed value: throws 400
 * VALIDATION_FAILED naming the first offending field as the schemas' errors do (`a.0.b`, or
 * `root` for the value itself). Iterative, so a pathological value cannot exhaust the stack here.
 */
export function assertStorable(value: unknown, root = 'body'): void {
  const stack: [unknown, string, number][] = [[value, '', 0]];
  const name = (path: string) => path || root;
  const join = (path: string, k: string) => (path ? `${path}.${k}` : k);
  while (stack.length) {
    const [v, path, depth] = stack.pop()!;
    if (typeof v === 'string') {
      if (!isStorableText(v)) throw refuse(name(path), BAD_TEXT);
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) throw refuse(name(path), `nested more than ${MAX_JSON_DEPTH} levels deep`);
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], join(path, String(i)), depth + 1]);
      continue;
    }
    for (const [k, x] of Object.entries(v)) {
      if (!isStorableText(k)) throw refuse(join(path, keyLabel(k)), `member names ${BAD_TEXT}`);
      stack.push([x, join(path, k), depth + 1]);
    }
  }
}

/**
 * Stops duplicate member names in a JSON text (`{"identifier":"a","identifier":"b"}`): JSON.parse
 * keeps the last, a proxy or WAF in front may read the first, and two readers disagreeing about
 * the same request is how checks get bypassed (I-JSON, RFC 7493 §2.3, forbids them). Call only
 * on text JSON.parse accepted; one linear pass, no recursion.
 */
export function assertUniqueMembers(text: string): void {
  const stack: (Set<string> | null)[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '{' || ch === '[') {
      stack.push(ch === '{' ? new Set() : null);
      continue;
    }
    if (ch === '}' || ch === ']') {
      stack.pop();
      continue;
    }
    if (ch !== '"') continue;
    let j = i + 1;
    while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
    const members = stack[stack.length - 1];
    let k = j + 1;
    while (k < text.length && ' \t\n\r'.includes(text[k])) k++;
    if (members && text[k] === ':') {
      const name = JSON.parse(text.slice(i, j + 1)) as string;
      if (members.has(name)) throw refuse(keyLabel(name), 'a member name appears twice in one object');
      members.add(name);
    }
    i = j;
  }
}

/**
 * Applies the rule to every query parameter (names and values) and every path segment, as the
 * routes will decode them; mounted once for the whole app, so no route can forget it.
 */
export function refuseUnstorableUrl(): MiddlewareHandler {
  return async (c, next) => {
    const url = new URL(c.req.url);
    for (const seg of url.pathname.split('/')) {
      let decoded: string;
      try {
        decoded = decodeURIComponent(seg);
      } catch {
        continue; // Not decodable: routes see it raw (`%FF`), which is storable text.
      }
      if (!isStorableText(decoded)) throw refuse('path', BAD_TEXT);
    }
    for (const [k, v] of url.searchParams) {
      if (!isStorableText(k)) throw refuse('query', `parameter names ${BAD_TEXT}`);
      if (!isStorableText(v)) throw refuse(`query.${keyLabel(k)}`, BAD_TEXT);
    }
    await next();
  };
}
