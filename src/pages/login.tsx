/** @jsxImportSource hono/jsx */
import { Hono, type Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { deviceId } from '../http/middleware/client.ts';
import type { Env } from '../http/services.ts';
import { isAppError } from '../errors.ts';
import type { Api } from './api.ts';
import { ERROR_ID, FlowPage, type FlowView } from './flow-view.tsx';
import { Layout, Notice, sendPage } from './layout.tsx';
import { problemSentence, sentenceFor } from './messages.ts';
import type { CsrfTokens, ReturnToPolicy } from './security.ts';
import { FlowStepForm, LoginStartForm, readForm } from './forms.ts';

export interface PageDeps {
  api: Api;
  csrf: CsrfTokens;
  returnTo: ReturnToPolicy;
  secure: boolean;
  resendCooldown: number;
  /** REMEMBER_DEVICE_DAYS (0: the offer is not made). */
  rememberDays: number;
}

/** The form fields of a flow page, turned into the flow API's event (the API validates it). */
export function eventOf(form: Record<string, string | undefined>): Record<string, unknown> | null {
  const str = (k: string) => form[k] ?? '';
  const factor = (e: Record<string, unknown>) => (form.remember === 'on' ? { ...e, remember: true } : e);
  switch (str('type')) {
    case 'password':
      return { type: 'password', identifier: str('identifier').trim(), password: str('password') };
    case 'choose':
      return { type: 'choose', method: str('method') };
    case 'totp':
    case 'code':
    case 'recovery_code':
      return factor({ type: str('type'), code: str('code').replace(/\s+/g, '') });
    case 'resend':
      return { type: 'resend' };
    case 'webauthn': {
      try {
        const response = JSON.parse(str('response')) as unknown;
        return response && typeof response === 'object' && !Array.isArray(response) ? factor({ type: 'webauthn', response }) : null;
      } catch {
        return null;
      }
    }
    default:
      return null;
  }
}

/** The identifier typed on the first page, remembered for this flow only (HttpOnly, this path only). */
const HINT = 'threshold_login_hint';

/** `?return_to=` kept on every link and form of the flow, only once validated. */
const withReturn = (path: string, rt: string | null) => (rt ? `${path}?return_to=${encodeURIComponent(rt)}` : path);

/** Where a finished flow sends the person. */
const destination = (rt: string | null, fallback: string) => rt ?? fallback;

function RefusedReturn() {
  return (
    <Layout title="Unknown destination">
      <h1>We cannot send you there</h1>
      <Notice kind="error">The link that brought you here asks to send you on to a site that is not registered with us, so we stopped. Sign in from the application you were using.</Notice>
      <p>
        <a href="/login">Sign in to your account instead</a>
      </p>
    </Layout>
  );
}

/** The first page: the identifier, or a passkey (autofill where the browser offers it), or an organisation's provider. */
function IdentifierPage(props: { csrf: string; returnTo: string | null; error?: string; identifier?: string; providers: { id: string; name: string; href: string }[] }) {
  const err = !!props.error;
  return (
    <Layout title="Sign in" scripts={['webauthn.js', 'login.js']}>
      <h1>Sign in</h1>
      {props.error ? (
        <Notice kind="error" id={ERROR_ID}>
          {props.error}
        </Notice>
      ) : null}
      <div id="js-error" class="notice error" role="alert" hidden></div>
      <form method="post" action="/login">
        <input type="hidden" name="csrf" value={props.csrf} />
        {props.returnTo ? <input type="hidden" name="return_to" value={props.returnTo} /> : null}
        <div class="field">
          <label for="identifier">Email address</label>
          <input id="identifier" name="identifier" type="email" required autofocus maxlength={320} autocomplete="username webauthn" value={props.identifier ?? ''} aria-describedby={err ? ERROR_ID : undefined} aria-invalid={err ? 'true' : undefined} />
        </div>
        <button type="submit">Continue</button>
      </form>
      {/* Filled and posted by login.js with a passkey's answer (autofill or the button). */}
      <form method="post" id="passkey-form" data-return={props.returnTo ?? ''} hidden>
        <input type="hidden" name="csrf" value={props.csrf} />
        {props.returnTo ? <input type="hidden" name="return_to" value={props.returnTo} /> : null}
        <input type="hidden" name="type" value="webauthn" />
        <input type="hidden" name="response" value="" />
      </form>
      <p>
        <button type="button" id="passkey-start" class="secondary" hidden>
          Sign in with a passkey
        </button>
      </p>
      {props.providers.length ? (
        <nav aria-label="Organisation sign-in">
          <h2>Or sign in with your organisation</h2>
          <ul class="providers">
            {props.providers.map((p) => (
              <li>
                <a class="button secondary" href={p.href}>
                  {p.name}
                </a>
              </li>
            ))}
          </ul>
        </nav>
      ) : null}
    </Layout>
  );
}

/** `GET /auth/providers`: each enabled provider as a link to the page's own start (which keeps `return_to`). */
async function providers(d: PageDeps, c: Context<Env>, rt: string | null) {
  const r = await d.api(c, 'GET', '/auth/providers');
  if (r.status !== 200 || !Array.isArray(r.body)) return [];
  return (r.body as { slug?: unknown; name?: unknown }[])
    .filter((p): p is { slug: string; name?: unknown } => typeof p.slug === 'string' && /^[a-z0-9-]{1,64}$/.test(p.slug))
    .map((p) => ({ id: p.slug, name: `Sign in with ${String(p.name ?? p.slug)}`, href: withReturn(`/login/idp/${p.slug}`, rt) }));
}

/**
 * A page sign-in that goes to an IdP remembers, for the browser that started it, which flow it
 * was and where to go afterwards. The IdP's callback sends the browser to FEDERATION_LANDING_URL
 * (`/`, below), which reads it back. HttpOnly; Lax, as the way back starts at the IdP's site.
 */
const RETURN = 'threshold_idp_return';
/** Sign-in and step-up pages over the flow API (POST/GET /auth/login, /auth/stepup). */
export function loginPages(d: PageDeps) {
  const app = new Hono<Env>();

  /** The validated `return_to` of this request; undefined when one was given and refused. */
  const returnTo = (c: Context<Env>, form?: Record<string, unknown>): string | null | undefined => {
    const raw = (typeof form?.return_to === 'string' ? form.return_to : undefined) ?? c.req.query('return_to');
    if (raw === undefined || raw === '') return null;
    return d.returnTo(raw) ?? undefined;
  };
  const refused = (c: Context<Env>) => sendPage(c, <RefusedReturn />, 400);
  const device = (c: Context<Env>) => deviceId(c, d.secure, true)!;

  const identifierPage = async (c: Context<Env>, rt: string | null, o: { error?: string; identifier?: string; status?: number } = {}) =>
    sendPage(c, <IdentifierPage csrf={d.csrf.issue('login', device(c))} returnTo={rt} error={o.error} identifier={o.identifier} providers={await providers(d, c, rt)} />, o.status);

  const rememberReturn = (c: Context<Env>, flowId: string, rt: string | null) =>
    setCookie(c, RETURN, `${flowId}.${Buffer.from(rt ?? '').toString('base64url')}`, { httpOnly: true, secure: d.secure, sameSite: 'Lax', path: '/', maxAge: 1800 });

  // An organisation's button: starts an IdP login through the API and goes to the IdP. A link, not
  // a form: a form post's redirect to another origin would break the CSP's form-action 'self'.
  app.get('/login/idp/:slug', async (c) => {
    const rt = returnTo(c);
    if (rt === undefined) return refused(c);
    const r = await d.api(c, 'POST', '/auth/login', { method: 'idp', provider: c.req.param('slug') });
    const url = r.body?.redirect?.url;
    if (r.status !== 201 || r.body.step !== 'redirect' || typeof url !== 'string' || !/^https?:\/\//.test(url)) return identifierPage(c, rt, { error: problemSentence(r.body), status: r.status === 201 ? 502 : r.status });
    rememberReturn(c, String(r.body.id), rt);
    c.header('Cache-Control', 'no-store');
    return c.redirect(url, 303);
  });

  // FEDERATION_LANDING_URL (default `/`): back from the IdP. A step-up still asked for (`?flow=`)
  // continues on its page; a finished page sign-in goes where it was going; else the account.
  app.get('/', async (c) => {
    const v = getCookie(c, RETURN) ?? '';
    if (v) deleteCookie(c, RETURN, { path: '/', secure: d.secure });
    const dot = v.indexOf('.');
    const flowId = dot > 0 ? v.slice(0, dot) : null;
    const rt = flowId ? d.returnTo(Buffer.from(v.slice(dot + 1), 'base64url').toString('utf8')) : null;
    const asked = c.req.query('flow');
    if (asked && asked.length <= 128) return c.redirect(withReturn(`/login/${encodeURIComponent(asked)}`, asked === flowId ? rt : null), 303);
    if (flowId && rt) {
      const r = await d.api(c, 'GET', `/auth/login/${encodeURIComponent(flowId)}`);
      if (r.status === 200 && r.body?.step === 'done') return c.redirect(rt, 303);
    }
    return c.redirect('/account', 303);
  });

  app.get('/login', async (c) => {
    const rt = returnTo(c);
    if (rt === undefined) return refused(c);
    return identifierPage(c, rt);
  });

  app.post('/login', async (c) => {
    const form = await readForm(c, LoginStartForm);
    const rt = returnTo(c, form);
    if (rt === undefined) return refused(c);
    d.csrf.check('login', deviceId(c, d.secure, false), form.csrf);
    const identifier = form.identifier.trim();
    if (!identifier) return identifierPage(c, rt, { error: 'Enter your email address.', status: 400 });
    const r = await d.api(c, 'POST', '/auth/login', { identifier });
    if (r.status !== 201) return identifierPage(c, rt, { error: problemSentence(r.body), identifier, status: r.status });
    const id = String(r.body.id);
    setCookie(c, HINT, `${id}.${Buffer.from(identifier).toString('base64url')}`, { httpOnly: true, secure: d.secure, sameSite: 'Strict', path: '/login', maxAge: 3600 });
    // Home-realm discovery: the flow page sends the browser on to the organisation's IdP.
    if (r.body.step === 'redirect') rememberReturn(c, id, rt);
    return c.redirect(withReturn(`/login/${encodeURIComponent(id)}`, rt), 303);
  });

  /** The identifier this browser typed for flow `id`, if it remembers one. */
  const hint = (c: Context<Env>, id: string) => {
    const v = getCookie(c, HINT);
    const dot = v?.indexOf('.') ?? -1;
    if (!v || dot < 0 || v.slice(0, dot) !== id) return null;
    return Buffer.from(v.slice(dot + 1), 'base64url').toString('utf8').slice(0, 320);
  };

  for (const kind of ['login', 'stepup'] as const) {
    const apiPath = (id: string) => `/auth/${kind}/${encodeURIComponent(id)}`;
    const pagePath = (id: string) => `/${kind}/${encodeURIComponent(id)}`;
    const fallback = kind === 'login' ? '/account' : '/account';

    const render = (c: Context<Env>, flow: FlowView, rt: string | null, o: { error?: string | null; status?: number; justSent?: boolean } = {}) => {
      const f = { action: withReturn(pagePath(flow.id), rt), csrf: d.csrf.issue('login', device(c)), returnTo: rt };
      const restart = kind === 'login' ? withReturn('/login', rt) : destination(rt, fallback);
      return sendPage(
        c,
        <FlowPage flow={flow} f={f} rememberDays={kind === 'login' ? d.rememberDays : 0} error={o.error} identifier={kind === 'login' ? hint(c, flow.id) : null} restartHref={restart} resendCooldown={d.resendCooldown} justSent={o.justSent} />,
        o.status,
      );
    };
    const gone = (c: Context<Env>, rt: string | null, code: string, status: number) =>
      render(c, { id: '', type: kind, step: 'expired' }, rt, { error: sentenceFor(code), status });

    app.get(`/${kind}/:id`, async (c) => {
      const rt = returnTo(c);
      if (rt === undefined) return refused(c);
      const id = c.req.param('id');
      const r = await d.api(c, 'GET', apiPath(id));
      if (r.status === 401) return c.redirect(withReturn('/login', destination(rt, fallback)), 303);
      if (r.status !== 200) return gone(c, rt, r.body?.code, r.status === 410 ? 410 : 404);
      const flow = r.body as FlowView;
      if (flow.step === 'done') return c.redirect(destination(rt, fallback), 303);
      return render(c, flow, rt, { justSent: c.req.query('sent') === '1' });
    });

    app.post(`/${kind}/:id`, async (c) => {
      const form = await readForm(c, FlowStepForm);
      const rt = returnTo(c, form);
      if (rt === undefined) return refused(c);
      const id = c.req.param('id');
      d.csrf.check('login', deviceId(c, d.secure, false), form.csrf);
      const event = eventOf(form);
      const current = async () => (await d.api(c, 'GET', apiPath(id))).body as FlowView & { code?: string };
      if (!event) {
        const flow = await current();
        return flow?.step ? render(c, flow, rt, { error: sentenceFor('VALIDATION_FAILED'), status: 400 }) : gone(c, rt, 'FLOW_NOT_FOUND', 404);
      }
      const r = await d.api(c, 'POST', apiPath(id), event);
      if (r.status === 200) {
        const flow = r.body as FlowView;
        if (flow.step === 'done') return c.redirect(destination(rt, fallback), 303);
        // After a step is taken, a plain GET shows the next one: reload and back stay harmless.
        const sent = flow.step === 'code' && (event.type === 'resend' || event.type === 'choose');
        return c.redirect(withReturn(pagePath(id), rt) + (sent ? `${rt ? '&' : '?'}sent=1` : ''), 303);
      }
      if (r.status === 401 && kind === 'stepup' && r.body?.code === 'UNAUTHENTICATED') return c.redirect(withReturn('/login', destination(rt, fallback)), 303);
      const flow = (r.body?.flow as FlowView | undefined) ?? (await current());
      if (!flow?.step) return gone(c, rt, r.body?.code ?? 'FLOW_NOT_FOUND', r.status);
      return render(c, flow, rt, { error: problemSentence(r.body), status: r.status });
    });
  }

  // A refused page form (CSRF token, origin) or a broken body: a page, not JSON.
  app.onError((err, c) => {
    if (isAppError(err) && err.status < 500) return sendPage(c, <Layout title="Try again"><h1>Please try again</h1><Notice kind="error">{problemSentence({ code: err.code })}</Notice><p><a href="/login">Back to sign-in</a></p></Layout>, err.status);
    throw err;
  });
  return app;
}
