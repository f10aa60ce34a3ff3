import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, Client, device, IP, startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * Issue 7: every route of the OpenAPI document, fed hostile input (NUL, lone surrogates, huge and
 * deeply nested bodies, wrong types, odd path parameters and query strings), unauthenticated and
 * as a signed-in admin: no answer is a 5xx, and a body over 64 KiB is 413. Seeded (FUZZ_SEED to
 * replay another run) and bounded: a fixed number of cases per operation.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 0x7e570);
const LIMIT = 64 * 1024;

/** mulberry32: small, seedable, good enough to pick cases. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] };
}
type Rng = ReturnType<typeof rng>;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Schema = Record<string, any>;

/** Values that fit the schema (roughly), one per alternative of a union, every member filled in: what mutations then break. */
function samples(s: Schema, doc: Schema, depth = 0): Json[] {
  if (s.$ref) return samples(doc.components.schemas[String(s.$ref).split('/').pop()!], doc, depth);
  if (s.oneOf ?? s.anyOf) return ((s.oneOf ?? s.anyOf) as Schema[]).flatMap((x) => samples(x, doc, depth));
  if ('const' in s) return [s.const as Json];
  if (s.enum) return [s.enum[0] as Json];
  switch (s.type) {
    case 'object': {
      const out: Record<string, Json> = {};
      for (const [k, v] of Object.entries((s.properties ?? {}) as Record<string, Schema>)) out[k] = depth > 4 ? 'x' : samples(v, doc, depth + 1)[0];
      if (s.additionalProperties !== false && !s.properties) out.k = 'x';
      return [out];
    }
    case 'array':
      return [depth > 4 ? [] : samples(s.items ?? {}, doc, depth + 1).slice(0, 1)];
    case 'string':
      return [s.format === 'email' ? 'fuzz@example.test' : 'x'.repeat(Math.max(1, Math.min(s.maxLength ?? 12, 12)))];
    case 'integer':
    case 'number':
      return [1];
    case 'boolean':
      return [true];
    default:
      return ['x'];
  }
}

/** Paths to every string and member in a value, to aim a mutation at one. */
function slots(v: Json, path: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(path);
  if (Array.isArray(v)) v.forEach((x, i) => slots(x, [...path, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) slots(x, [...path, k], out);
  return out;
}

function replaceAt(v: Json, path: (string | number)[], by: Json): Json {
  if (!path.length) return by;
  const copy: any = Array.isArray(v) ? [...v] : { ...(v as object) };
  copy[path[0]] = replaceAt(copy[path[0]], path.slice(1), by);
  return copy;
}

/** What Postgres cannot store as given. */
const UNSTORABLE = ['a\u0000b', '\u0000', '\ud800', 'x\udc00', '\ud83d', '\udfff\ud800'];
const ODD_STRINGS = ['A'.repeat(5000), '\ufeff', '%00', '${jndi:x}', "'; DROP TABLE users;--", '\u202e', '\u2028', '\ufffd', '', ' '];
const WRONG_TYPES: Json[] = [null, 0, -1, 1e308, true, [], {}, [1, 2], { a: 1 }, '', 'true'];

/** Raw bodies: each [description, bytes, content-type]. Every string and member of every sample gets hostile text. */
function bodies(bases: Json[], r: Rng): [string, Buffer | string, string][] {
  const json = (v: Json) => JSON.stringify(v);
  const out: [string, Buffer | string, string][] = [];
  for (const base of bases) {
    out.push(['sample', json(base), 'application/json']);
    for (const slot of slots(base).slice(1)) {
      out.push([`unstorable ${slot.join('.')}`, json(replaceAt(base, slot, r.pick(UNSTORABLE))), 'application/json']);
      out.push([`odd ${slot.join('.')}`, json(replaceAt(base, slot, r.pick(ODD_STRINGS))), 'application/json']);
      out.push([`wrong type ${slot.join('.')}`, json(replaceAt(base, slot, r.pick(WRONG_TYPES))), 'application/json']);
    }
    const obj = base && typeof base === 'object' && !Array.isArray(base) ? base : {};
    out.push(['hostile member name', json({ ...obj, [r.pick(['\u0000', '\ud800', 'k\udc00', '__proto__', 'constructor'])]: 1 }), 'application/json']);
  }
  const base = bases[0];
  const at = () => r.pick(slots(base));
  out.push(
    ['deep nesting', `{"a":${'['.repeat(20_000)}${']'.repeat(20_000)}}`, 'application/json'],
    ['deep objects', `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`, 'application/json'],
    ['huge array', `[${'1,'.repeat(25_000)}1]`, 'application/json'],
    ['many members', json(Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`k${i}`, 'v']))), 'application/json'],
    ['huge string', json(replaceAt(base, at(), 'z'.repeat(60_000))), 'application/json'],
    ['not JSON', json(base).slice(0, -1) + '\u0000', 'application/json'],
    ['invalid UTF-8', Buffer.concat([Buffer.from('{"type":"'), Buffer.from([0xff, 0xfe, 0xed, 0xa0, 0x80, 0xc0]), Buffer.from('"}')]), 'application/json'],
    ['BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json(base))]), 'application/json'],
    ['duplicate members', json(base).replace(/^\{/, '{"type":1,"type":"x",'), 'application/json'],
    ['scalar', r.pick(['null', '1', '"\\ud800"', '"\\u0000"', 'true', '[]']), 'application/json'],
    ['form', 'a=%00&b=%ED%A0%80&grant_type=refresh_token&refresh_token=%00', 'application/x-www-form-urlencoded'],
    ['text', json(base), 'text/plain'],
    ['too large', `{"a":"${'x'.repeat(LIMIT + 16)}"}`, 'application/json'],
  );
  return out;
}

const ODD_SEGMENTS = ['%00', 'a%00b', '%ED%A0%80', '%FF', '%', '..%2F..%2Fetc%2Fpasswd', 'x'.repeat(3000), '%F0%9F%98%80', '-1', '00000000-0000-0000-0000-000000000000', "'%20OR%201=1--", '%20', 'flw_AAAAAAAAAAAAAAAAAAAAAA', '%E2%80%AE', 'null'];
const ODD_QUERIES = ['', '?to=%00', '?userId=%00', '?userId=x&userId=y', '?endOtherSessions=%ED%A0%80', `?q=${'a'.repeat(4000)}`, '?%00=1', '?a[b]=1&a[b]=2', '?userId=00000000-0000-0000-0000-000000000000', '?to=%FF%FE', '?endOtherSessions=true'];

interface Result {
  status: number;
  body: string;
}

/** One request over a socket with exact bytes (fetch would rewrite lone surrogates and refuse GET bodies). */
function send(base: string, method: string, path: string, body: Buffer | string | undefined, headers: Record<string, string>): Promise<Result> {
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
    const req = request(
      { host: u.hostname, port: u.port, method, path, headers: { ...headers, ...(payload ? { 'content-length': String(payload.length) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8').slice(0, 300) }));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout: ${method} ${path}`)));
    req.on('error', reject);
    req.end(payload);
  });
}

describe('fuzz every route of the OpenAPI document', () => {
  let t: TestServer;
  let admin: Client;
  let doc: Schema;
  const known: string[] = [];

  const signIn = async () => {
    admin = new Client(t.url, { 'x-forwarded-for': IP.mountainView, 'x-device-id': device('fuzz-admin') });
    expect((await admin.passwordLogin(ADMIN.email, ADMIN.password)).body.step).toBe('done');
  };

  beforeAll(async () => {
    t = await startTestServer({
      DEV_MAILBOX: 'on',
      RATE_LIMIT_FLOW_STARTS_PER_MINUTE: '100000',
      RATE_LIMIT_IP_FAILURES: '100000',
      RATE_LIMIT_ACCOUNT_FAILURES: '100000',
      RATE_LIMIT_IP_ACCOUNT_FAILURES: '100000',
      RATE_LIMIT_DELAY_BASE_MS: '0',
      RATE_LIMIT_DELAY_MAX_MS: '0',
      LOCKOUT_THRESHOLD: '100',
    });
    await signIn();
    doc = (await (await fetch(`${t.url}/openapi.json`)).json()) as Schema;
    // Real ids too, so some cases get past the lookups: a live flow, a pending factor, another user.
    known.push((await admin.post('/auth/login', {})).body.id, (await admin.post('/auth/mfa/totp')).body.id);
    known.push((await t.services.users.create({ email: 'fuzz-victim@example.test', roles: [] })).id);
  });
  afterAll(async () => t?.close());

  it('answers no 5xx, and 413 for bodies over 64 KiB', { timeout: 150_000 }, async () => {
    const r = rng(SEED);
    const failures: string[] = [];
    let requests = 0;
    let reachedAsAdmin = 0;
    const started = Date.now();
    const ops = Object.entries(doc.paths as Record<string, Record<string, Schema>>)
      .flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method: method.toUpperCase(), op })))
      // Signing out last: it ends the admin session the other cases use.
      .sort((a, b) => Number(a.path === '/auth/logout') - Number(b.path === '/auth/logout'));
    expect(ops.length).toBeGreaterThan(35);

    for (const { path, method, op } of ops) {
      const schema = (op.requestBody?.content?.['application/json']?.schema ?? { type: 'object' }) as Schema;
      const hasBody = method !== 'GET' && method !== 'HEAD';
      const cases = hasBody ? bodies(samples(schema, doc), r) : Array.from({ length: 6 }, () => ['no body', undefined, ''] as const);
      for (const asAdmin of [false, true]) {
        await Promise.all(
          cases.map(async ([what, body, type]) => {
            const url =
              path.replace(/\{[^}]+\}/g, () => (r.next() < 0.3 ? r.pick(known) : r.pick(ODD_SEGMENTS))) + (body === undefined || r.next() < 0.3 ? r.pick(ODD_QUERIES) : '');
            const headers: Record<string, string> = { 'x-forwarded-for': IP.london, ...(type ? { 'content-type': type } : {}) };
            if (asAdmin) headers.cookie = [...admin.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
            requests++;
            let res: Result;
            try {
              res = await send(t.url, method, url, body, headers);
            } catch (e) {
              failures.push(`${method} ${url.slice(0, 120)} [${what}${asAdmin ? ', admin' : ''}]: ${(e as Error).message}`);
              return;
            }
            const size = body === undefined ? 0 : Buffer.byteLength(body);
            // A route may document its own body limit (x-max-body-bytes, e.g. back-test uploads).
            const limit = (op as { 'x-max-body-bytes'?: number })['x-max-body-bytes'] ?? LIMIT;
            const wrong = res.status >= 500 || (size > limit && res.status !== 413 && res.status !== 431);
            if (wrong) failures.push(`${method} ${url.slice(0, 120)} [${what}${asAdmin ? ', admin' : ''}] → ${res.status} ${res.body}`);
            if (asAdmin && !res.body.includes('"UNAUTHENTICATED"')) reachedAsAdmin++;
          }),
        );
      }
      if (path === '/auth/logout') await signIn();
    }
    const seconds = (Date.now() - started) / 1000;
    expect(failures, `seed ${SEED}`).toEqual([]);
    expect(requests).toBeGreaterThan(800);
    expect(reachedAsAdmin).toBeGreaterThan(requests / 2 - 50);
    // No route is pathologically slow: the budget is per request (the documented surface grows;
    // a hung request already fails above, at its own 10 s timeout).
    expect(seconds / requests).toBeLessThan(0.06);
    expect((await t.services.audit.verify()).ok).toBe(true);
  });
});
