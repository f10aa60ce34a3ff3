import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Chromium, type Page } from '../helpers/chromium.ts';
import { startFederation, type FederationRig } from '../helpers/federation.ts';
import { Client, enrolTotp, IP, oathtool } from '../helpers/server.ts';

/**
 * Issue 13 item 1 and issue 10's browser test, through the sign-in pages in Debian's Chromium: the
 * organisation's button on /login (from GET /auth/providers), the IdP's own login and consent
 * pages, and back signed in on /account; home-realm discovery by the typed address; `return_to`
 * kept across the IdP round trip and its safety rules; the strict CSP holds on every page.
 */
describe('organisation sign-in through the pages in a real browser', () => {
  let f: FederationRig;
  let chromium: Chromium;
  let issuer = '';
  const violations: string[] = [];

  beforeAll(async () => {
    // The default landing URL: the pages take the browser on from there.
    f = await startFederation({ env: { FEDERATION_LANDING_URL: '/' } });
    issuer = f.idps.acme.issuer;
    f.accounts.pat = { password: 'pat-at-the-idp', email: 'pat@acme.test', emailVerified: true, name: 'Pat', groups: ['pathologists'] };
    f.accounts.lee = { password: 'lee-at-the-idp', email: 'lee@acme.test', emailVerified: true, name: 'Lee', groups: [] };
    const p = await f.addProvider('acme', { allowedEmailDomains: ['acme.test'] });
    await f.admin.post(`/api/idps/${p.id}/mappings`, { group: 'pathologists', role: 'PATHOLOGIST' });
    const org = await f.admin.post('/api/organisations', { slug: 'acme', name: 'Acme', provider: 'acme', domains: ['acme.test'] });
    expect(org.status).toBe(201);
    chromium = await Chromium.launch('MAP unused.test 127.0.0.1');
    chromium.onEvent((m) => {
      const first = m.params?.args?.[0]?.value;
      if (m.method === 'Runtime.consoleAPICalled' && typeof first === 'string' && first.startsWith('CSP-VIOLATION')) violations.push(first);
      if (m.method === 'Log.entryAdded' && /Content.Security.Policy/i.test(m.params?.entry?.text ?? '')) violations.push(`log: ${m.params.entry.text}`);
    });
  }, 90_000);
  afterAll(async () => {
    await chromium?.close();
    await f?.close();
  });
  afterEach(() => {
    expect(violations.splice(0), 'Content-Security-Policy violations').toEqual([]);
  });

  /** A person's browser (its own cookies, at Threshold and at the IdP) reporting CSP violations. */
  async function browser(ip?: string): Promise<Page> {
    const page = await chromium.newPage({ isolated: true });
    await page.send('Log.enable');
    if (ip) await page.send('Network.setExtraHTTPHeaders', { headers: { 'X-Forwarded-For': ip } });
    await page.send('Page.addScriptToEvaluateOnNewDocument', {
      source: "document.addEventListener('securitypolicyviolation', (e) => console.error('CSP-VIOLATION ' + e.violatedDirective + ' ' + e.blockedURI + ' ' + location.pathname))",
    });
    return page;
  }
  const navigate = async (page: Page, js: string) => {
    const loaded = chromium.waitFor('Page.loadEventFired', page.sessionId, () => true, 20_000);
    await page.evaluate(js);
    await loaded;
  };
  /** Runs `js` and waits until the tab shows a complete page whose URL starts with `prefix` (through any redirects and refreshes). */
  const arriveAt = async (page: Page, prefix: string, js: string) => {
    const there = chromium.waitFor('Page.frameNavigated', page.sessionId, (p) => !p.frame.parentId && String(p.frame.url).startsWith(prefix), 20_000);
    await page.evaluate(js);
    await there;
    await page.evaluate("new Promise((r) => (document.readyState === 'complete' ? r(1) : addEventListener('load', () => r(1))))");
  };
  const click = (sel: string) => `document.querySelector(${JSON.stringify(sel)}).click();`;
  const href = (page: Page) => page.evaluate<string>('location.href');
  const me = (page: Page) => page.evaluate<any>("fetch('/auth/me').then((r) => r.json())");

  /** The IdP's own login and consent pages, as a person fills them in. */
  async function signInAtIdp(page: Page, login: string, password: string, landing: string) {
    expect(await href(page)).toMatch(new RegExp(`^${issuer}/interaction/`));
    expect(await page.evaluate<string>('document.title')).toBe('Sign in');
    await page.evaluate(`document.getElementById('login').value = ${JSON.stringify(login)}; document.getElementById('password').value = ${JSON.stringify(password)}`);
    await navigate(page, click('#submit'));
    expect(await page.evaluate<string>('document.title')).toBe('Allow access');
    await arriveAt(page, landing, click('#allow'));
  }

  it("clicks the organisation's button on /login, signs in at the IdP and lands signed in on /account", async () => {
    const page = await browser();
    await page.goto(`${f.url}/login`);
    const buttons = await page.evaluate<{ text: string; href: string }[]>(
      "[...document.querySelectorAll('nav[aria-label=\"Organisation sign-in\"] a')].map((a) => ({ text: a.textContent.trim(), href: a.getAttribute('href') }))",
    );
    expect(buttons).toEqual([{ text: 'Sign in with acme SSO', href: '/login/idp/acme' }]);
    await navigate(page, click('nav a'));
    await signInAtIdp(page, 'pat', 'pat-at-the-idp', `${f.url}/account`);

    expect(await href(page)).toBe(`${f.url}/account`);
    expect(await page.evaluate<string>('document.querySelector("main").innerText')).toContain('Signed in as pat@acme.test');
    expect(await page.evaluate('document.getElementById("password-change")')).toBeNull();
    const who = await me(page);
    expect(who).toMatchObject({ user: { email: 'pat@acme.test' }, roles: ['PATHOLOGIST'], passwordChangeRequired: false });
    expect(who.session.amr).toContain('fed');
    // The way back is spent: the landing now just goes to the account.
    await page.goto(`${f.url}/`);
    expect(await href(page)).toBe(`${f.url}/account`);

    // The account's password flagged as breached: the account page says so.
    await f.t.db.query("UPDATE identities SET password_compromised = true WHERE lower(email) = 'pat@acme.test'");
    await page.goto(`${f.url}/account`);
    expect(await page.evaluate<string>('document.getElementById("password-change").innerText')).toMatch(/data breach/);
    expect((await me(page)).passwordChangeRequired).toBe(true);
  });

  it('home-realm discovery: an address at the organisation’s domain goes to its IdP, and return_to is kept', async () => {
    const page = await browser();
    await page.goto(`${f.url}/login?return_to=${encodeURIComponent('/auth/me?from=idp')}`);
    await page.evaluate("document.getElementById('identifier').value = 'Lee@Acme.test'");
    // POST /login, then the flow page goes on to the IdP by itself (no script, no click).
    await arriveAt(page, `${issuer}/interaction/`, click('form[action="/login"] button[type=submit]'));
    await signInAtIdp(page, 'lee', 'lee-at-the-idp', `${f.url}/auth/me`);
    expect(await href(page)).toBe(`${f.url}/auth/me?from=idp`);
    const who = JSON.parse(await page.evaluate<string>('document.body.innerText'));
    expect(who).toMatchObject({ user: { email: 'lee@acme.test' } });
    expect(who.session.amr).toContain('fed');
  });

  it('an address at another domain gets the password step, not the IdP', async () => {
    const page = await browser();
    await page.goto(`${f.url}/login`);
    await navigate(page, "document.getElementById('identifier').value = 'sam@elsewhere.test';" + click('form[action="/login"] button[type=submit]'));
    expect(await href(page)).toMatch(new RegExp(`^${f.url}/login/[^/?]+$`));
    expect(await page.evaluate('!!document.getElementById("password")')).toBe(true);
    expect(await page.evaluate('document.querySelector("meta[http-equiv=refresh]")')).toBeNull();
  });

  it('a risky IdP login (new country) continues on the step-up page, then goes to return_to', async () => {
    f.accounts.kim = { password: 'kim-at-the-idp', email: 'kim@acme.test', emailVerified: true, name: 'Kim', groups: [] };
    // Kim's usual place: signed in there through the button, and an authenticator app set up.
    const home = await browser(IP.london);
    await home.goto(`${f.url}/login`);
    await navigate(home, click('nav a'));
    await signInAtIdp(home, 'kim', 'kim-at-the-idp', `${f.url}/account`);
    const c = new Client(f.url, { 'x-forwarded-for': IP.london });
    for (const k of (await home.send('Network.getCookies', { urls: [f.url] })).cookies as { name: string; value: string }[]) c.cookies.set(k.name, k.value);
    const secret = await enrolTotp(c, f.t);

    // Now from Sydney, in a browser never seen, on the way to a page of the app.
    const page = await browser(IP.sydney);
    await page.goto(`${f.url}/login?return_to=${encodeURIComponent('/auth/me?stepped=1')}`);
    expect(await page.evaluate<string>("document.querySelector('nav a').getAttribute('href')")).toBe(`/login/idp/acme?return_to=${encodeURIComponent('/auth/me?stepped=1')}`);
    await navigate(page, click('nav a'));
    await signInAtIdp(page, 'kim', 'kim-at-the-idp', `${f.url}/login/`);
    expect(await href(page)).toMatch(new RegExp(`^${f.url}/login/flw_[^/?]+\\?return_to=${encodeURIComponent('/auth/me?stepped=1')}$`));
    expect(await page.evaluate<string>('document.body.innerText')).toContain('Why we are asking:');
    expect((await me(page)).code).toBe('UNAUTHENTICATED');
    if (await page.evaluate("!!document.querySelector('button[value=totp]')")) await navigate(page, click('button[value=totp]'));
    f.t.clock.advance(30_000); // the enrolment used this step's code
    await navigate(page, `document.querySelector('#code').value = ${JSON.stringify(oathtool(secret, f.t.clock.now()))};` + click('form button[type=submit]'));
    expect(await href(page)).toBe(`${f.url}/auth/me?stepped=1`);
    const who = JSON.parse(await page.evaluate<string>('document.body.innerText'));
    expect(who.user.email).toBe('kim@acme.test');
    expect(who.session.amr).toEqual(expect.arrayContaining(['fed', 'otp', 'mfa']));
  });

  it('keeps the return_to rules: a foreign return_to is refused before any IdP, a tampered way back is ignored', async () => {
    const page = await browser();
    await page.goto(`${f.url}/login/idp/acme?return_to=${encodeURIComponent('//evil.test/x')}`);
    expect(await href(page)).toBe(`${f.url}/login/idp/acme?return_to=${encodeURIComponent('//evil.test/x')}`);
    expect(await page.evaluate<string>('document.querySelector("h1").innerText')).toBe('We cannot send you there');
    const { cookies } = await page.send('Network.getCookies', { urls: [f.url] });
    expect(cookies.map((c: { name: string }) => c.name)).not.toContain('threshold_idp_return');

    // A way-back cookie naming another site (set by hand: Threshold never writes one) is not followed.
    await page.send('Network.setCookie', { name: 'threshold_idp_return', value: `x.${Buffer.from('https://evil.test/').toString('base64url')}`, url: `${f.url}/`, path: '/' });
    await page.goto(`${f.url}/`);
    expect(await href(page)).toBe(`${f.url}/login?return_to=%2Faccount`);

    // An unknown organisation: the sign-in page with a sentence, no redirect anywhere.
    await page.goto(`${f.url}/login/idp/nope`);
    expect(await href(page)).toBe(`${f.url}/login/idp/nope`);
    expect(await page.evaluate('!!document.getElementById("identifier")')).toBe(true);
    expect(await page.evaluate<string>('document.querySelector("[role=alert]").innerText')).not.toBe('');
  });
});
