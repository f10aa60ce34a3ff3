import { Hono, type Context } from 'hono';
import { describe, expect, it } from 'vitest';
import { createPrincipalPipeline } from '../../src/principals/pipeline.ts';
import type { AnyPrincipal, Authenticator } from '../../src/principals/types.ts';

const principal = (id: string): AnyPrincipal => ({ kind: 'service_account', via: 'service_token', identityId: id, credentialId: id, amr: [], authTime: 0, factorTimes: {} });
const fake = (name: string, header: string, log: string[]): Authenticator => ({
  name,
  presented: (c) => c.req.header(header) !== undefined,
  async authenticate(c: Context) {
    log.push(name);
    const v = c.req.header(header);
    return v === 'ok' ? principal(name) : null;
  },
});

async function run(p: ReturnType<typeof createPrincipalPipeline>, headers: Record<string, string>) {
  const app = new Hono();
  let seen: (AnyPrincipal | null)[] = [];
  app.get('/', async (c) => {
    // Asked twice in one request: the second answer comes from the request, not the authenticators.
    seen = [await p.authenticate(c), await p.authenticate(c)];
    return c.text(p.presented(c) ? 'presented' : 'none');
  });
  const r = await app.request('/', { headers });
  return { seen, presented: await r.text() };
}

describe('the principal pipeline', () => {
  it('tries authenticators in order; the first principal wins; it is kept for the request', async () => {
    const log: string[] = [];
    const p = createPrincipalPipeline([fake('one', 'x-one', log), fake('two', 'x-two', log)]);
    const r = await run(p, { 'x-one': 'no', 'x-two': 'ok' });
    expect(r.seen.map((x) => x?.identityId)).toEqual(['two', 'two']);
    expect(log).toEqual(['one', 'two']);
    expect((await run(p, {})).seen).toEqual([null, null]);
    expect((await run(p, {})).presented).toBe('none');
    expect((await run(p, { 'x-two': 'bad' })).presented).toBe('presented');
  });

  it('a service-account authenticator registers in its slot (after the API key), once', async () => {
    const log: string[] = [];
    const p = createPrincipalPipeline([fake('session_cookie', 'x-c', log), fake('bearer_access_token', 'x-b', log), fake('api_key', 'x-k', log)]);
    p.register(fake('service_account', 'x-s', log), { after: 'bearer_access_token' });
    expect(p.names).toEqual(['session_cookie', 'bearer_access_token', 'service_account', 'api_key']);
    expect(() => p.register(fake('service_account', 'x-s', log))).toThrow(/already registered/);
    expect(() => p.register(fake('x', 'x', log), { before: 'nope' })).toThrow(/no authenticator/);
    expect((await run(p, { 'x-s': 'ok' })).seen[0]?.identityId).toBe('service_account');
  });

  it('an authenticator that refuses definitely (throws) stops the pipeline', async () => {
    const p = createPrincipalPipeline([
      { name: 'strict', presented: () => true, authenticate: async () => { throw new Error('malformed'); } },
      fake('later', 'x-l', []),
    ]);
    const app = new Hono();
    app.get('/', async (c) => c.text(String(await p.authenticate(c))));
    expect((await app.request('/', { headers: { 'x-l': 'ok' } })).status).toBe(500);
  });
});
