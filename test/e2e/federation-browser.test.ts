import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Chromium, type Page } from '../helpers/chromium.ts';
import { startFederation, type FederationRig } from '../helpers/federation.ts';

/**
 * Issue 10 in Debian's Chromium: the sign-in button's link (from GET /auth/providers), the IdP's
 * own login and consent pages filled in and submitted like a person would, the redirect back, and
 * the browser lands signed in (GET /auth/me, its cookies only).
 */
describe('IdP sign-in in a real browser', () => {
  let f: FederationRig;
  let chromium: Chromium;
  let page: Page;

  beforeAll(async () => {
    f = await startFederation();
    f.accounts.pat = { password: 'pat-at-the-idp', email: 'pat@acme.test', emailVerified: true, name: 'Pat', groups: ['pathologists'] };
    const p = await f.addProvider('acme');
    await f.admin.post(`/api/idps/${p.id}/mappings`, { group: 'pathologists', role: 'PATHOLOGIST' });
    chromium = await Chromium.launch('MAP unused.test 127.0.0.1');
    page = await chromium.newPage();
  }, 60_000);
  afterAll(async () => {
    await chromium?.close();
    await f?.close();
  });

  /** Runs script that navigates (a click, a form submit) and waits for the next page to load. */
  const navigate = async (script: string) => {
    const loaded = chromium.waitFor('Page.loadEventFired', page.sessionId, () => true, 20_000);
    await page.evaluate(script);
    await loaded;
  };
  const location = () => page.evaluate<string>('location.href');

  it('clicks the IdP button, signs in at the IdP, and lands signed in', async () => {
    await page.goto(`${f.url}/auth/providers`);
    const providers = JSON.parse(await page.evaluate<string>('document.body.innerText'));
    expect(providers).toEqual([{ slug: 'acme', name: 'acme SSO', type: 'oidc', loginUrl: `${f.url}/auth/idp/acme/login` }]);
    // The "button": a link to the provider's loginUrl, clicked.
    await page.evaluate(`document.body.innerHTML = '<a id="sso" href="${providers[0].loginUrl}">Sign in with acme SSO</a>'`);
    await navigate(`document.getElementById('sso').click()`);
    expect(await location()).toMatch(new RegExp(`^${f.idps.acme.issuer}/interaction/`));
    expect(await page.evaluate<string>('document.title')).toBe('Sign in');

    await page.evaluate(`document.getElementById('login').value = 'pat'; document.getElementById('password').value = 'pat-at-the-idp'`);
    await navigate(`document.getElementById('submit').click()`);
    expect(await page.evaluate<string>('document.title')).toBe('Allow access');
    await navigate(`document.getElementById('allow').click()`);

    // Back at Threshold: the callback set the session and sent the browser to the landing page.
    expect(await location()).toBe(`${f.url}/auth/me`);
    const me = JSON.parse(await page.evaluate<string>('document.body.innerText'));
    expect(me).toMatchObject({ user: { email: 'pat@acme.test', displayName: 'Pat' }, roles: ['PATHOLOGIST'], session: { amr: ['fed'] } });
    const { cookies } = await page.send('Network.getCookies', { urls: [f.url] });
    const session = cookies.find((c: { name: string }) => c.name === 'threshold_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax' });
  });
});
