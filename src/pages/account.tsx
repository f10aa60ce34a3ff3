/** @jsxImportSource hono/jsx */
import { Hono, type Context } from 'hono';
import QRCode from 'qrcode';
import type { Env } from '../http/services.ts';
import { isAppError } from '../errors.ts';
import type { ApiAnswer } from './api.ts';
import { AccountPage, CodesPage, TotpSetupPage, type DeviceItem, type FactorItem, type SessionItem } from './account-view.tsx';
import { Layout, Notice, sendPage } from './layout.tsx';
import { problemSentence } from './messages.ts';
import type { PageDeps } from './login.tsx';
import { AccountForm, readForm } from './forms.ts';
import type { z } from 'zod';

/** What `?done=` may announce after a change (a fixed list: nothing from the URL is echoed). */
const DONE: Record<string, string> = {
  'session-ended': 'That device is signed out.',
  'device-forgotten': 'That device is forgotten: signing in from it is checked like any other.',
  'others-ended': 'You are signed out everywhere else.',
  renamed: 'Renamed.',
  removed: 'Removed.',
  'totp-added': 'Your authenticator app is set up.',
  'passkey-added': 'Your passkey is set up.',
  confirmed: 'Thank you, you confirmed it is you. You can make your change now.',
};

type Form = z.infer<typeof AccountForm>;
const field = (f: Form, k: keyof Form) => f[k] ?? '';

/** The account page and its forms; every change goes through the API's own routes (/auth/sessions, /auth/mfa…). */
export function accountPages(d: PageDeps) {
  const app = new Hono<Env>();
  const toLogin = (c: Context<Env>) => c.redirect('/login?return_to=%2Faccount', 303);

  /** The signed-in person (null: not signed in). */
  const me = async (c: Context<Env>) => {
    const r = await d.api(c, 'GET', '/auth/me');
    return r.status === 200 ? (r.body as { user: { email: string }; session: { id: string }; passwordChangeRequired?: boolean }) : null;
  };

  const show = async (c: Context<Env>, o: { notice?: string | null; error?: string | null; status?: number } = {}) => {
    const who = await me(c);
    if (!who) return toLogin(c);
    const [sessions, factors, devices] = await Promise.all([
      d.api(c, 'GET', '/auth/sessions'),
      d.api(c, 'GET', '/auth/mfa'),
      // Remembered devices, where the API offers them.
      d.api(c, 'GET', '/auth/devices'),
    ]);
    return sendPage(
      c,
      <AccountPage
        email={who.user.email}
        passwordChangeRequired={who.passwordChangeRequired === true}
        csrf={d.csrf.issue('account', who.session.id)}
        sessions={(sessions.body ?? []) as SessionItem[]}
        factors={(factors.body ?? []) as FactorItem[]}
        devices={devices.status === 200 && Array.isArray(devices.body) ? (devices.body as DeviceItem[]) : null}
        notice={o.notice}
        error={o.error}
      />,
      o.status,
    );
  };

  app.get('/account', (c) => show(c, { notice: DONE[c.req.query('done') ?? ''] ?? null }));

  /**
   * Every account form: signed in, the page's token for this session, then one API call. A 401
   * asking for fresh MFA sends the person through a step-up flow and back here.
   */
  const action = (path: string, run: (c: Context<Env>, form: Form) => Promise<Response | ApiAnswer>, ok: (c: Context<Env>, r: ApiAnswer, form: Form) => Response | Promise<Response>) =>
    app.post(path, async (c) => {
      const form = await readForm(c, AccountForm);
      const who = await me(c);
      if (!who) return toLogin(c);
      d.csrf.check('account', who.session.id, form.csrf);
      const r = await run(c, form);
      if (r instanceof Response) return r;
      if (r.status >= 200 && r.status < 300) return ok(c, r, form);
      if (r.status === 401 && r.body?.code === 'STEP_UP_REQUIRED') return stepUp(c, r.body);
      if (r.status === 401) return toLogin(c);
      return show(c, { error: problemSentence(r.body), status: r.status });
    });

  const stepUp = async (c: Context<Env>, challenge: { acr_values?: string; max_age?: number } | null) => {
    const body: Record<string, unknown> = {};
    if (typeof challenge?.acr_values === 'string') body.acr_values = challenge.acr_values;
    if (typeof challenge?.max_age === 'number') body.max_age = challenge.max_age;
    const r = await d.api(c, 'POST', '/auth/stepup', body);
    if (r.status !== 201) return show(c, { error: problemSentence(r.body), status: r.status });
    return c.redirect(`/stepup/${encodeURIComponent(String(r.body.id))}?return_to=${encodeURIComponent('/account?done=confirmed')}`, 303);
  };

  const done = (what: keyof typeof DONE) => (c: Context<Env>) => c.redirect(`/account?done=${what}`, 303);
  const codes = (heading: string) => (c: Context<Env>, r: ApiAnswer) => sendPage(c, <CodesPage codes={r.body.recoveryCodes as string[]} heading={heading} />);
  const maybeCodes = (what: keyof typeof DONE, heading: string) => (c: Context<Env>, r: ApiAnswer) =>
    Array.isArray(r.body?.recoveryCodes) ? codes(heading)(c, r) : done(what)(c);

  action('/account/sessions/:id/end', (c) => d.api(c, 'DELETE', `/auth/sessions/${encodeURIComponent(c.req.param('id')!)}`), done('session-ended'));

  // "Everywhere else": the session routes, once per other session of mine.
  action(
    '/account/sessions/end-others',
    async (c) => {
      const list = await d.api(c, 'GET', '/auth/sessions');
      if (list.status !== 200) return list;
      for (const s of list.body as SessionItem[]) {
        if (s.current) continue;
        const r = await d.api(c, 'DELETE', `/auth/sessions/${encodeURIComponent(s.id)}`);
        if (r.status !== 204 && r.status !== 404) return r;
      }
      return { status: 204, body: null, headers: new Headers() };
    },
    done('others-ended'),
  );

  action('/account/devices/:id/forget', (c) => d.api(c, 'DELETE', `/auth/devices/${encodeURIComponent(c.req.param('id')!)}`), done('device-forgotten'));
  action('/account/factors/:id/rename', (c, f) => d.api(c, 'PATCH', `/auth/mfa/${encodeURIComponent(c.req.param('id')!)}`, { label: field(f, 'label') }), done('renamed'));
  action('/account/factors/:id/remove', (c) => d.api(c, 'DELETE', `/auth/mfa/${encodeURIComponent(c.req.param('id')!)}`), done('removed'));
  action('/account/recovery-codes', (c) => d.api(c, 'POST', '/auth/mfa/recovery-codes'), codes('Your new recovery codes'));
  action('/account/confirm', async (c) => stepUp(c, null), done('confirmed'));
  action('/account/logout', (c) => d.api(c, 'POST', '/auth/logout'), (c) => c.redirect('/login', 303));

  const totpPage = async (c: Context<Env>, id: string, uri: string, csrf: string, error?: string, status = 200) => {
    const secret = new URL(uri).searchParams.get('secret') ?? '';
    const svg = await QRCode.toString(uri, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' });
    const qr = `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
    return sendPage(c, <TotpSetupPage csrf={csrf} id={id} qr={qr} secret={secret} uri={uri} error={error} />, status);
  };

  action('/account/totp', (c) => d.api(c, 'POST', '/auth/mfa/totp'), (c, r, f) => totpPage(c, String(r.body.id), String(r.body.otpauthUri), field(f, 'csrf')));
  action(
    '/account/totp/:id/confirm',
    async (c, f) => {
      const r = await d.api(c, 'POST', `/auth/mfa/totp/${encodeURIComponent(c.req.param('id')!)}/confirm`, { code: field(f, 'code').replace(/\s+/g, '') });
      // A wrong code: the same QR code again (the person's own enrolment, posted back from its page), with the reason.
      const uri = field(f, 'uri');
      if (r.body?.code === 'MFA_CODE_INVALID' && uri.startsWith('otpauth://totp/')) return totpPage(c, c.req.param('id')!, uri, field(f, 'csrf'), problemSentence(r.body), 400);
      return r;
    },
    maybeCodes('totp-added', 'Your authenticator app is set up'),
  );
  action(
    '/account/passkey',
    (c, f) => {
      let response: unknown = null;
      try {
        response = JSON.parse(field(f, 'response'));
      } catch {
        // an empty or broken answer: the API refuses it below
      }
      const label = field(f, 'label').trim();
      return d.api(c, 'POST', '/auth/mfa/webauthn', { response: response ?? {}, ...(label ? { label: label.slice(0, 64) } : {}) });
    },
    maybeCodes('passkey-added', 'Your passkey is set up'),
  );

  app.onError((err, c) => {
    if (isAppError(err) && err.status < 500)
      return sendPage(
        c,
        <Layout title="Try again">
          <h1>Please try again</h1>
          <Notice kind="error">{problemSentence({ code: err.code })}</Notice>
          <p>
            <a href="/account">Back to your account</a>
          </p>
        </Layout>,
        err.status,
      );
    throw err;
  });
  return app;
}
