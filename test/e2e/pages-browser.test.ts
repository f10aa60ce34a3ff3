import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { serve } from '@hono/node-server';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApp } from '../../src/http/app.ts';
import { Chromium, type Page } from '../helpers/chromium.ts';
import { Client, device, enrolTotp, IP, oathtool, signIn, startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * Issue 13 items 1, 2 and 5 in Debian's Chromium against a real Threshold: password sign-in, a
 * risky sign-in stepped up to TOTP with its reason, passkey registration on the account page and
 * passkey sign-in (CDP virtual authenticator), ending another session, a step-up asked by the API,
 * back/reload, a refused return_to. Every page is screenshotted into test-artifacts/pages/, and
 * any Content-Security-Policy violation fails the test.
 */
const SHOTS = resolve(import.meta.dirname, '../../test-artifacts/pages');
const PW = 'a long and careful passphrase';

const freePort = () =>
  new Promise<number>((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => res(port));
    });
  });

describe('the sign-in and account pages in a real browser', () => {
  let t: TestServer;
  let chromium: Chromium;
  let server: ReturnType<typeof serve>;
  let T = '';
  const violations: string[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    const port = await freePort();
    // PUBLIC_URL is the origin the browser uses: the WebAuthn rpID (localhost) and the CSRF origin.
    T = `http://localhost:${port}`;
    t = await startTestServer({ PUBLIC_URL: T });
    server = serve({ fetch: createApp(t.services).fetch, port, hostname: '127.0.0.1' });
    await new Promise<void>((r) => server.once('listening', () => r()));
    chromium = await Chromium.launch('MAP localhost 127.0.0.1');
    chromium.onEvent((m) => {
      const first = m.params?.args?.[0]?.value;
      if (m.method === 'Runtime.consoleAPICalled' && typeof first === 'string' && first.startsWith('CSP-VIOLATION')) violations.push(first);
      if (m.method === 'Log.entryAdded' && /Content.Security.Policy/i.test(m.params?.entry?.text ?? '')) violations.push(`log: ${m.params.entry.text}`);
    });
  }, 90_000);
  afterAll(async () => {
    await chromium?.close();
    await new Promise((r) => server?.close(r));
    await t?.close();
  });
  // A CSP violation on any page fails the test that caused it.
  afterEach(() => {
    const seen = violations.splice(0);
    expect(seen, 'Content-Security-Policy violations').toEqual([]);
  });

  /** A person's browser: its own cookies, a CSP violation reporter, optionally a client address. */
  async function browser(ip?: string): Promise<Page> {
    const page = await chromium.newPage({ isolated: true });
    await page.send('Log.enable');
    await page.send('Page.addScriptToEvaluateOnNewDocument', {
      source: "document.addEventListener('securitypolicyviolation', (e) => console.error('CSP-VIOLATION ' + e.violatedDirective + ' ' + e.blockedURI + ' ' + location.pathname))",
    });
    if (ip) await page.send('Network.setExtraHTTPHeaders', { headers: { 'X-Forwarded-For': ip } });
    return page;
  }
  const shot = async (page: Page, name: string) => {
    const { data } = await page.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true });
    writeFileSync(join(SHOTS, `${name}.png`), Buffer.from(data, 'base64'));
  };
  /** Runs `js` in the page (a click, a submit) and waits for the page it leads to. */
  const navigate = async (page: Page, js: string) => {
    const loaded = chromium.waitFor('Page.loadEventFired', page.sessionId, () => true, 20_000);
    await page.evaluate(js);
    await loaded.catch(async (e) => {
      throw new Error(`${(e as Error).message} after ${js} (now at ${await path(page)})`);
    });
  };
  /**
   * Back or forward: the browser may restore the page from its back/forward cache (no load event),
   * so wait for the frame to navigate and the document to be complete.
   */
  const historyGo = async (page: Page, js: string) => {
    const moved = chromium.waitFor('Page.frameNavigated', page.sessionId, (p) => !p.frame.parentId, 20_000);
    await page.evaluate(js);
    await moved;
    await page.evaluate("new Promise((r) => (document.readyState === 'complete' ? r(1) : addEventListener('load', () => r(1))))");
  };
  const fill = (sel: string, v: string) => `document.querySelector(${JSON.stringify(sel)}).value = ${JSON.stringify(v)};`;
  const click = (sel: string) => `document.querySelector(${JSON.stringify(sel)}).click();`;
  const text = (page: Page) => page.evaluate<string>('document.body.innerText');
  const path = (page: Page) => page.evaluate<string>('location.pathname + location.search');

  /** Identifier, then password, through the pages' forms. */
  async function passwordSignIn(page: Page, email: string, start = `${T}/login`) {
    await page.goto(start);
    await navigate(page, fill('#identifier', email) + click('form[action="/login"] button[type=submit]'));
    expect(await path(page)).toMatch(/^\/login\/[^/]+/);
    await navigate(page, fill('#password', PW) + click('#password ~ button, form button[type=submit]'));
  }

  it('the CSP reporter works: an injected inline script is caught', async () => {
    const page = await browser();
    await page.goto(`${T}/login`);
    const caught = chromium.waitFor('Runtime.consoleAPICalled', page.sessionId, (p) => String(p.args?.[0]?.value).startsWith('CSP-VIOLATION'));
    await page.evaluate("(() => { const s = document.createElement('script'); s.textContent = 'window.pwned = 1'; document.head.append(s); })()");
    await caught;
    expect(await page.evaluate('window.pwned === undefined')).toBe(true);
    expect(violations.splice(0).some((v) => v.includes('script-src'))).toBe(true);
  });

  it('a person signs in with a password and lands on the account page; reload and back keep the flow', async () => {
    await t.services.users.create({ email: 'ann@example.test', password: PW, roles: [] });
    const page = await browser(IP.london);
    await page.goto(`${T}/login`);
    await shot(page, '01-login-identifier');
    await navigate(page, fill('#identifier', 'ann@example.test') + click('form[action="/login"] button[type=submit]'));
    const flowPage = await path(page);
    expect(flowPage).toMatch(/^\/login\/[^/?]+$/);
    await shot(page, '02-login-password');
    // Reload, then back and forward: the flow's current step each time, the identifier kept.
    await navigate(page, 'location.reload()');
    expect(await page.evaluate("document.querySelector('#identifier').value")).toBe('ann@example.test');
    await historyGo(page, 'history.back()');
    expect(await path(page)).toBe('/login');
    await historyGo(page, 'history.forward()');
    expect(await path(page)).toBe(flowPage);
    expect(await page.evaluate("!!document.querySelector('#password')")).toBe(true);
    // A wrong password: a sentence tied to the field.
    await navigate(page, fill('#password', 'wrong password!') + click('form button[type=submit]'));
    expect(await text(page)).toContain('That email address and password do not match.');
    expect(await page.evaluate("document.querySelector('#password').getAttribute('aria-describedby')")).toBe('form-error');
    await shot(page, '03-login-error');
    await navigate(page, fill('#password', PW) + click('form button[type=submit]'));
    expect(await path(page)).toBe('/account');
    expect(await text(page)).toContain('Signed in as ann@example.test');
    await shot(page, '04-account');

    // Add an authenticator app: a QR code as an image (no script), the key to type, a code to confirm.
    await navigate(page, click('form[action="/account/totp"] button'));
    expect(await page.evaluate<string>("document.querySelector('img.qr').src")).toMatch(/^data:image\/svg\+xml;base64,/);
    const secret = (await page.evaluate<string>("document.querySelector('code.secret').textContent")).replace(/\s/g, '');
    await shot(page, '04b-account-totp');
    await navigate(page, fill('#code', '12345') + click('form[action$="/confirm"] button'));
    expect(await text(page)).toContain('That code is not right');
    expect(await page.evaluate("document.querySelector('#code').getAttribute('aria-describedby')")).toBe('code-error');
    expect(await page.evaluate<string>("document.querySelector('code.secret').textContent")).toBe(secret.replace(/(.{4})/g, '$1 ').trim());
    await navigate(page, fill('#code', oathtool(secret, t.clock.now())) + click('form[action$="/confirm"] button'));
    expect(await text(page)).toContain('Your authenticator app is set up');
    expect(await page.evaluate('document.querySelectorAll("ol.codes li").length')).toBe(10);
    await navigate(page, click('a.button'));
    // Rename it.
    await navigate(page, fill('input[name=label]', 'Work phone') + click('form[action$="/rename"] button'));
    expect(await text(page)).toContain('Renamed.');
    expect(await page.evaluate<string>("document.querySelector('ul.factors h3').textContent")).toBe('Work phone');
  });

  it('a risky sign-in asks for TOTP and says why; back and reload keep the step; a later change asks to confirm it is you', async () => {
    await t.services.users.create({ email: 'rita@example.test', password: PW, roles: [] });
    // Rita's usual place and device, where she set up her authenticator app.
    const { c } = await signIn(t.url, 'rita@example.test', PW, { ip: IP.london, device: device('rita') });
    const secret = await enrolTotp(c, t);
    // Now from the other side of the world, in a browser never seen.
    const page = await browser(IP.sydney);
    await passwordSignIn(page, 'rita@example.test');
    let body = await text(page);
    expect(body).toContain('Why we are asking:');
    await shot(page, '05-stepup-choose');
    if (await page.evaluate("!!document.querySelector('button[value=totp]')")) await navigate(page, click('button[value=totp]'));
    expect(await page.evaluate("!!document.querySelector('#code[autocomplete=one-time-code]')")).toBe(true);
    body = await text(page);
    expect(body).toContain('Why we are asking:');
    await shot(page, '06-stepup-totp');
    await navigate(page, 'location.reload()');
    expect(await page.evaluate("!!document.querySelector('#code')")).toBe(true);
    await historyGo(page, 'history.back()');
    await historyGo(page, 'history.forward()');
    expect(await page.evaluate("!!document.querySelector('#code')")).toBe(true);
    t.clock.advance(30_000);
    // She asks to remember this browser: the account page then lists it, and she can forget it.
    await navigate(page, fill('#code', oathtool(secret, t.clock.now())) + click('#remember') + click('form button[type=submit]'));
    expect(await path(page)).toBe('/account');
    expect(await page.evaluate('document.querySelectorAll("#devices-h ~ ul li").length')).toBe(1);
    await shot(page, '06b-account-remembered');
    await navigate(page, click('form[action$="/forget"] button'));
    expect(await text(page)).toContain('That device is forgotten');
    expect(await text(page)).toContain('No remembered devices.');

    // Twenty minutes later her second factor is no longer fresh: new recovery codes need a step-up.
    t.clock.advance(20 * 60_000);
    await navigate(page, click('form[action="/account/recovery-codes"] button'));
    expect(await path(page)).toMatch(/^\/stepup\/[^/]+\?return_to=/);
    await shot(page, '07-account-stepup');
    if (await page.evaluate("!!document.querySelector('button[value=totp]')")) await navigate(page, click('button[value=totp]'));
    t.clock.advance(30_000);
    await navigate(page, fill('#code', oathtool(secret, t.clock.now())) + click('form button[type=submit]'));
    expect(await path(page)).toBe('/account?done=confirmed');
    await navigate(page, click('form[action="/account/recovery-codes"] button'));
    expect(await text(page)).toContain('Your new recovery codes');
    expect(await page.evaluate('document.querySelectorAll("ol.codes li").length')).toBe(10);
    await shot(page, '08-recovery-codes');
  });

  it('registers a passkey from the account page, then signs in with it (virtual authenticator)', async () => {
    await t.services.users.create({ email: 'pat@example.test', password: PW, roles: [] });
    const page = await browser(IP.london);
    await page.send('WebAuthn.enable', { enableUI: false });
    await page.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    await passwordSignIn(page, 'pat@example.test');
    expect(await path(page)).toBe('/account');
    await page.evaluate(fill('#passkey-label', 'Laptop passkey'));
    await navigate(page, click('#passkey-add'));
    // The first factor comes with recovery codes, shown once.
    expect(await text(page)).toContain('Your passkey is set up');
    await navigate(page, click('a.button'));
    expect(await text(page)).toContain('Laptop passkey');
    await shot(page, '09-account-passkey');
    await navigate(page, click('form[action="/account/logout"] button'));
    expect(await path(page)).toBe('/login');
    // Signed out for good before the next sign-in page is asked for (it would send a signed-in browser to /account).
    await vi.waitFor(async () => expect(await page.evaluate("fetch('/auth/me').then((r) => r.status)")).toBe(401), { timeout: 10_000 });
    // The passkey button on the first page (in a browser without passkey autofill): no identifier, no password.
    const { identifier } = await page.send('Page.addScriptToEvaluateOnNewDocument', { source: 'PublicKeyCredential.isConditionalMediationAvailable = async () => false;' });
    await page.goto(`${T}/login?return_to=${encodeURIComponent('/account')}`);
    // The new document (not the one being left) must be the one clicked in.
    await vi.waitFor(async () => expect(await page.evaluate("location.search.includes('return_to') && document.querySelector('#passkey-start') !== null")).toBe(true), { timeout: 10_000 });
    await navigate(page, click('#passkey-start'));
    expect(await path(page)).toBe('/account');
    expect(await text(page)).toContain('Signed in as pat@example.test');
    const me = await page.evaluate<any>("fetch('/auth/me').then((r) => r.json())");
    expect(me.session.amr).toEqual(expect.arrayContaining(['mfa']));
    await navigate(page, click('form[action="/account/logout"] button'));
    await page.send('Page.removeScriptToEvaluateOnNewDocument', { identifier });

    // Conditional mediation: the first page asks for a passkey quietly; choosing it (the virtual
    // authenticator picks its only one) signs in with no click at all.
    let loads = 0;
    const signedIn = new Promise<void>((r) => chromium.onEvent((m) => m.method === 'Page.loadEventFired' && m.sessionId === page.sessionId && ++loads === 2 && r()));
    await page.goto(`${T}/login?return_to=${encodeURIComponent('/account')}`);
    await signedIn;
    expect(await page.evaluate('PublicKeyCredential.isConditionalMediationAvailable()')).toBe(true);
    expect(await path(page)).toBe('/account');
    expect(await text(page)).toContain('Signed in as pat@example.test');
  });

  it('ends another session from the account page', async () => {
    await t.services.users.create({ email: 'sam@example.test', password: PW, roles: [] });
    const elsewhere = (await signIn(t.url, 'sam@example.test', PW, { ip: IP.london, device: device('sam-phone') })).c;
    const page = await browser(IP.london);
    await passwordSignIn(page, 'sam@example.test');
    expect(await page.evaluate('document.querySelectorAll("tbody tr").length')).toBe(2);
    await shot(page, '10-account-sessions');
    await navigate(page, click('form[action$="/end"] button'));
    expect(await text(page)).toContain('That device is signed out.');
    expect((await elsewhere.get('/auth/me')).status).toBe(401);
    expect(await page.evaluate('document.querySelectorAll("tbody tr").length')).toBe(1);
  });

  it('refuses to carry a return_to to a foreign origin', async () => {
    const page = await browser();
    for (const bad of ['https://evil.example/', '//evil.example', 'javascript:alert(1)', '/\\evil.example']) {
      await page.goto(`${T}/login?return_to=${encodeURIComponent(bad)}`);
      expect(await text(page)).toContain('We cannot send you there');
      expect(await page.evaluate("document.querySelector('form') === null")).toBe(true);
    }
    await shot(page, '11-return-to-refused');
    expect(new Client(t.url)).toBeTruthy();
  });
});
