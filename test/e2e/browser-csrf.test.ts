import { createServer, type RequestListener, type Server } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/http/app.ts';
import { Chromium, type Page } from '../helpers/chromium.ts';
import { ADMIN, Client, startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * Issue 7, items 3, 7 and 8 in a real Chromium: the headers a browser really sends (cookies under
 * SameSite=Lax, Sec-Fetch-Site, Origin) when a page on a sibling subdomain or a foreign site
 * posts to Threshold, when Threshold's own page posts its form, and when a page frames Threshold.
 * id.sibling.test is Threshold; evil.sibling.test (same site) and evil.test are the attacker's.
 */
describe('a real browser against Threshold (CSRF, framing, flow binding)', () => {
  let t: TestServer;
  let chromium: Chromium;
  let evil: Server;
  let front: Server;
  let T = '';
  let evilPort = 0;
  const pages = new Map<string, string>();
  const SIBLING = () => `http://evil.sibling.test:${evilPort}`;
  const FOREIGN = () => `http://evil.test:${evilPort}`;

  beforeAll(async () => {
    t = await startTestServer();
    // Threshold as deployed at T: PUBLIC_URL is the origin users reach (known once the port is).
    let listener: RequestListener | null = null;
    front = createServer((req, res) => listener!(req, res));
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
    T = `http://id.sibling.test:${(front.address() as AddressInfo).port}`;
    listener = getRequestListener(createApp({ ...t.services, config: { ...t.config, PUBLIC_URL: T } }).fetch) as RequestListener;
    evil = createServer((req, res) => {
      const html = pages.get(req.url ?? '');
      res.writeHead(html ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html ?? 'no such page');
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()));
    evilPort = (evil.address() as AddressInfo).port;
    chromium = await Chromium.launch('MAP id.sibling.test 127.0.0.1, MAP evil.sibling.test 127.0.0.1, MAP evil.test 127.0.0.1', [T, SIBLING(), FOREIGN()]);
  }, 60_000);
  afterAll(async () => {
    await chromium?.close();
    await new Promise((r) => evil?.close(r));
    await new Promise((r) => front?.close(r));
    await t?.close();
  });

  /** An attacker's page that posts a plain HTML form on load. */
  const autoForm = (action: string, o: { enctype?: string; fields?: Record<string, string> } = {}) =>
    `<!doctype html><form method="post" action="${action}" enctype="${o.enctype ?? 'application/x-www-form-urlencoded'}">` +
    Object.entries(o.fields ?? {})
      .map(([k, v]) => `<input type="hidden" name='${k}' value='${v}'>`)
      .join('') +
    '</form><script>document.forms[0].submit()</script>';

  /** Threshold's view of this browser, asked from a Threshold page (same origin). */
  const me = async (page: Page) => {
    await page.goto(`${T}/auth/check`);
    return page.evaluate<{ status: number; body: any }>(`fetch('/auth/me').then(async (r) => ({ status: r.status, body: await r.json() }))`);
  };

  let page: Page;
  let victimSid = '';

  it('a same-origin script signs in (real Sec-Fetch-Site/Origin pass); the flow answers nobody else', async () => {
    page = await chromium.newPage();
    await page.goto(`${T}/auth/check`);
    const r = await page.evaluate<{ id: string; other: number; status: number; body: any }>(`(async () => {
      const h = { 'content-type': 'application/json' };
      const flow = await (await fetch('/auth/login', { method: 'POST', headers: h, body: '{}' })).json();
      const other = await fetch(${JSON.stringify(t.url)} + '/auth/login/' + flow.id).then((x) => x.status).catch(() => -1);
      const r = await fetch('/auth/login/' + flow.id, { method: 'POST', headers: h, body: JSON.stringify({ type: 'password', identifier: ${JSON.stringify(ADMIN.email)}, password: ${JSON.stringify(ADMIN.password)} }) });
      return { id: flow.id, other, status: r.status, body: await r.json() };
    })()`);
    expect(r.status).toBe(200);
    expect(r.body.step).toBe('done');
    const submit = await page.request('POST', `/auth/login/${r.id}`);
    expect(submit.headers['sec-fetch-site']).toBe('same-origin');
    // The flow id, taken to another client (no device cookie of this browser): unknown.
    const stolen = await new Client(t.url).get(`/auth/login/${r.id}`);
    expect(stolen.status).toBe(404);
    expect(stolen.body.code).toBe('FLOW_NOT_FOUND');

    // A second user's session for the admin to (not) lock.
    await t.services.users.create({ email: 'victim@example.test', password: 'victim-long-password', roles: [] });
    const v = new Client(t.url);
    expect((await v.passwordLogin('victim@example.test', 'victim-long-password')).body.step).toBe('done');
    victimSid = (await v.get('/auth/me')).body.session.id;
  });

  it('a form on a sibling subdomain carries the Lax cookie, and is refused: logout, admin user creation, session lock, TOTP enrolment', async () => {
    const since = (await t.db.query<{ s: string }>('SELECT coalesce(max(seq), 0) AS s FROM audit_events')).rows[0].s;
    pages.set('/logout', autoForm(`${T}/auth/logout`));
    // The classic text/plain trick: the body reads as JSON.
    pages.set('/create-user', autoForm(`${T}/api/users`, { enctype: 'text/plain', fields: { '{"email":"planted@evil.test","roles":["ADMIN"],"x":"': '"}' } }));
    pages.set('/lock', autoForm(`${T}/api/sessions/${victimSid}/lock`));
    pages.set('/totp', `<!doctype html><script>fetch(${JSON.stringify(`${T}/auth/mfa/totp`)}, { method: 'POST', mode: 'no-cors', credentials: 'include' })</script>`);
    for (const [path, target] of [
      ['/logout', '/auth/logout'],
      ['/create-user', '/api/users'],
      ['/lock', `/api/sessions/${victimSid}/lock`],
      ['/totp', '/auth/mfa/totp'],
    ]) {
      await page.goto(SIBLING() + path);
      const seen = await page.request('POST', target);
      expect({ path, site: seen.headers['sec-fetch-site'], origin: seen.headers.origin, status: seen.status }).toEqual({ path, site: 'same-site', origin: SIBLING(), status: 403 });
      // SameSite=Lax does not stop a sibling: the session cookie was sent.
      expect(seen.headers.cookie).toMatch(/threshold_session=/);
    }
    expect((await me(page)).status).toBe(200);
    expect(await t.services.users.byEmail('planted@evil.test')).toBeFalsy();
    expect((await t.services.sessions.byId(victimSid))?.state).toBe('active');
    const { rows } = await t.db.query("SELECT 1 FROM audit_events WHERE seq > $1 AND type IN ('mfa.enrolment_started', 'session.locked', 'user.created', 'session.revoked')", [since]);
    expect(rows).toHaveLength(0);
  });

  it('a form on a foreign site is refused too', async () => {
    pages.set('/foreign-logout', autoForm(`${T}/auth/logout`));
    await page.goto(FOREIGN() + '/foreign-logout');
    const seen = await page.request('POST', '/auth/logout');
    expect(seen.headers['sec-fetch-site']).toBe('cross-site');
    expect(seen.status).toBe(403);
    expect((await me(page)).status).toBe(200);
  });

  it('no page of another site can frame Threshold', async () => {
    pages.set('/frame', `<!doctype html><iframe src="${T}/auth/check"></iframe>`);
    await page.goto(SIBLING() + '/frame');
    const framed = await page.request('GET', '/auth/check');
    expect(framed.status).toBe(200); // fetched, but not shown:
    const tree = await page.send('Page.getFrameTree');
    const child = tree.frameTree.childFrames?.[0]?.frame;
    // Chromium refused to render it: an error document stands in its place.
    expect({ url: child?.url, unreachableUrl: child?.unreachableUrl }).toEqual({ url: 'chrome-error://chromewebdata/', unreachableUrl: `${T}/auth/check` });
  });

  it('the "this wasn\'t me" button on Threshold\'s own page works in the browser', async () => {
    // The session to report: another sign-in of the admin, elsewhere.
    const other = new Client(t.url);
    expect((await other.passwordLogin(ADMIN.email, ADMIN.password)).body.step).toBe('done');
    const sid = (await other.get('/auth/me')).body.session.id as string;
    const admin = (await t.services.users.byEmail(ADMIN.email))!;
    const ev = await t.db.query<{ id: string }>("SELECT id FROM login_events WHERE identity_id = $1 AND outcome = 'succeeded' ORDER BY created_at DESC LIMIT 1", [admin.id]);
    const token = await t.services.reports.create({ identityId: admin.id, sessionId: sid, loginEventId: ev.rows[0].id });
    await page.goto(`${T}/auth/report/${token}`);
    const loaded = chromium.waitFor('Page.loadEventFired', page.sessionId);
    await page.evaluate(`document.querySelector('button').click()`);
    await loaded;
    const post = await page.request('POST', `/auth/report/${token}`);
    expect(post.status).toBe(200);
    expect(post.headers['sec-fetch-site']).toBe('same-origin');
    expect(post.headers.origin).toBe(T); // Referrer-Policy: same-origin on that page
    expect(await page.evaluate<string>('document.body.innerText')).toContain('signed out');
    expect((await other.get('/auth/me')).status).toBe(401);
  });

  it('Threshold\'s own page signs out with a script; a form body only goes to the declared form routes', async () => {
    await page.goto(`${T}/auth/check`);
    // One rule for every JSON route: JSON or no body, even from our own origin (415, nothing done).
    await page.evaluate(`(() => { const f = document.createElement('form'); f.method = 'post'; f.action = '/auth/logout'; document.body.append(f); f.submit(); })()`);
    const form = await page.request('POST', '/auth/logout');
    expect(form.headers['sec-fetch-site']).toBe('same-origin');
    expect(form.status).toBe(415);
    expect((await me(page)).status).toBe(200);
    const out = await page.evaluate<number>(`fetch('/auth/logout', { method: 'POST' }).then((r) => r.status)`);
    expect(out).toBe(204);
    expect((await me(page)).status).toBe(401);
  });
});
