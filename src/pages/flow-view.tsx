/** @jsxImportSource hono/jsx */
import type { Child } from 'hono/jsx';
import { Layout, Notice } from './layout.tsx';
import { METHOD_NAMES } from './messages.ts';

/** The flow as the API presents it (src/http/present.ts), plus a federation `redirect` when there is one. */
export interface FlowView {
  id: string;
  type: string;
  step: string;
  methods?: string[];
  challenge?: Record<string, unknown>;
  risk?: { level: string; reasons: string[]; message: string };
  redirect?: { url?: string; label?: string };
}

/** What every form of a flow page carries: where it posts, the page CSRF token, the return address. */
export interface FormContext {
  action: string;
  csrf: string;
  returnTo: string | null;
}

export const ERROR_ID = 'form-error';

function Hidden(props: { f: FormContext; type?: string }) {
  return (
    <>
      <input type="hidden" name="csrf" value={props.f.csrf} />
      {props.f.returnTo ? <input type="hidden" name="return_to" value={props.f.returnTo} /> : null}
      {props.type ? <input type="hidden" name="type" value={props.type} /> : null}
    </>
  );
}

/** One labelled code field; a shown error is tied to it (aria-describedby) and marks it invalid. */
function CodeField(props: { label: string; hint: string; error: boolean; numeric: boolean; autocomplete: string }) {
  return (
    <div class="field">
      <label for="code">{props.label}</label>
      <p class="hint" id="code-hint">
        {props.hint}
      </p>
      <input
        id="code"
        name="code"
        type="text"
        required
        autofocus
        maxlength={64}
        inputmode={props.numeric ? 'numeric' : 'text'}
        autocomplete={props.autocomplete}
        spellcheck={false}
        aria-describedby={props.error ? `code-hint ${ERROR_ID}` : 'code-hint'}
        aria-invalid={props.error ? 'true' : undefined}
      />
    </div>
  );
}

/** "Remember this device": sent with the factor event; the API decides whether it applies. */
function Remember(props: { days: number }) {
  if (props.days <= 0) return null;
  return (
    <div class="field check">
      <input type="checkbox" id="remember" name="remember" value="on" />
      <label for="remember">{`Remember this device for ${props.days} days`}</label>
    </div>
  );
}

function Form(props: { f: FormContext; type?: string; id?: string; children: Child; data?: Record<string, string> }) {
  const data = Object.fromEntries(Object.entries(props.data ?? {}).map(([k, v]) => [`data-${k}`, v]));
  return (
    <form method="post" action={props.f.action} id={props.id} {...data}>
      <Hidden f={props.f} type={props.type} />
      {props.children}
    </form>
  );
}

/** "Use another way": every offered method but the current one, as `choose` buttons. */
function OtherMethods(props: { f: FormContext; methods: string[]; current?: string; title?: string }) {
  const others = props.methods.filter((m) => m !== props.current);
  if (!others.length) return null;
  return (
    <Form f={props.f} type="choose">
      <fieldset class="methods">
        <legend>{props.title ?? 'Or use another way'}</legend>
        {others.map((m) => (
          <button type="submit" name="method" value={m} class={props.current ? 'secondary' : undefined}>
            {METHOD_NAMES[m] ?? m}
          </button>
        ))}
      </fieldset>
    </Form>
  );
}

const MFA_STEPS = new Set(['choose_method', 'totp', 'code', 'webauthn', 'recovery_code']);
/** A method offered by the step a flow is at (the `choose` value of that step). */
const METHOD_OF_STEP: Record<string, string> = { totp: 'totp', webauthn: 'webauthn', recovery_code: 'recovery_code' };

/** The step a flow asks for, as a page. `identifier`: what the person typed on the first page (if this browser remembers it). */
export function FlowPage(props: {
  flow: FlowView;
  f: FormContext;
  error?: string | null;
  identifier?: string | null;
  restartHref: string;
  resendCooldown: number;
  justSent?: boolean;
  /** Offer "remember this device" on a login's second-factor step (0: no offer). */
  rememberDays: number;
}) {
  const { flow, f } = props;
  const err = !!props.error;
  const stepUp = flow.type === 'stepup';
  const methods = flow.methods ?? [];
  const current = flow.step === 'code' ? (flow.challenge?.channel as string | undefined) : METHOD_OF_STEP[flow.step];
  let title = stepUp ? 'Confirm it is you' : 'Sign in';
  let body: Child;
  switch (flow.step) {
    case 'password':
      body = (
        <Form f={f} type="password">
          <div class="field">
            <label for="identifier">Email address</label>
            <input id="identifier" name="identifier" type="email" required maxlength={320} autocomplete="username" value={props.identifier ?? ''} aria-describedby={err ? ERROR_ID : undefined} />
          </div>
          <div class="field">
            <label for="password">Password</label>
            <input id="password" name="password" type="password" required maxlength={1024} autocomplete="current-password" autofocus aria-describedby={err ? ERROR_ID : undefined} aria-invalid={err ? 'true' : undefined} />
          </div>
          <button type="submit">Sign in</button>
        </Form>
      );
      break;
    case 'redirect': {
      const url = flow.redirect?.url;
      body = /^https?:\/\//.test(url ?? '') ? (
        <p>
          <a class="button" href={url}>
            {flow.redirect?.label ?? 'Continue with your organisation'}
          </a>
        </p>
      ) : (
        <p>Your organisation signs you in, but its address is not available. Please start again.</p>
      );
      title = 'Continue with your organisation';
      break;
    }
    case 'choose_method':
      body = <OtherMethods f={f} methods={methods} title="Choose how to confirm it is you" />;
      break;
    case 'totp':
      body = (
        <Form f={f} type="totp">
          <CodeField label="Code from your authenticator app" hint="Six digits, shown in the app for this account." error={err} numeric autocomplete="one-time-code" />
          <Remember days={props.rememberDays} />
          <button type="submit">Confirm</button>
        </Form>
      );
      break;
    case 'recovery_code':
      body = (
        <Form f={f} type="recovery_code">
          <CodeField label="Recovery code" hint="One of the codes you saved when you set up your second factor. Each works once." error={err} numeric={false} autocomplete="off" />
          <Remember days={props.rememberDays} />
          <button type="submit">Confirm</button>
        </Form>
      );
      break;
    case 'code': {
      const channel = flow.challenge?.channel === 'sms' ? 'by text message' : 'by email';
      const to = typeof flow.challenge?.to === 'string' ? ` to ${flow.challenge.to}` : '';
      body = (
        <>
          <Form f={f} type="code">
            <CodeField label="Code we sent you" hint={`We sent a code ${channel}${to}. It works for 10 minutes.`} error={err} numeric autocomplete="one-time-code" />
            <Remember days={props.rememberDays} />
            <button type="submit">Confirm</button>
          </Form>
          <Form f={f} type="resend" id="resend-form" data={{ cooldown: String(props.justSent ? props.resendCooldown : 0) }}>
            <p class="hint" id="resend-hint">
              {`No code? You can ask for a new one ${props.resendCooldown} seconds after the last.`}
            </p>
            <button type="submit" class="secondary" aria-describedby="resend-hint">
              Send a new code
            </button>
          </Form>
        </>
      );
      break;
    }
    case 'webauthn':
      body = (
        <Form f={f} type="webauthn" id="webauthn-form" data={{ options: JSON.stringify(flow.challenge ?? {}) }}>
          <input type="hidden" name="response" value="" />
          <p>Use your security key or the passkey on this device.</p>
          <Remember days={props.rememberDays} />
          <p class="js-off">This step needs JavaScript, which is turned off in this browser.</p>
          <button type="button" id="webauthn-start" hidden>
            Use security key or passkey
          </button>
        </Form>
      );
      break;
    case 'locked':
      title = 'Too many attempts';
      body = <p>{stepUp ? 'Too many wrong codes. Start again later.' : 'Too many failed attempts. Wait a while before trying again, or ask an administrator to unlock your account.'}</p>;
      break;
    case 'denied':
      title = 'Sign-in refused';
      body = <p>This sign-in was refused.</p>;
      break;
    case 'expired':
      title = 'This page has expired';
      body = <p>It took too long, so we stopped this sign-in to keep your account safe.</p>;
      break;
    default:
      body = <p>Please start again.</p>;
  }
  const final = ['locked', 'denied', 'expired'].includes(flow.step) || (flow.step === 'redirect' && !flow.redirect?.url);
  return (
    <Layout title={title} scripts={flow.step === 'webauthn' || flow.step === 'code' ? ['webauthn.js', 'login.js'] : undefined} refresh={flow.step === 'redirect' && /^https?:\/\//.test(flow.redirect?.url ?? '') ? flow.redirect!.url : undefined}>
      <h1>{title}</h1>
      {props.error ? (
        <Notice kind="error" id={ERROR_ID}>
          {props.error}
        </Notice>
      ) : null}
      <div id="js-error" class="notice error" role="alert" hidden></div>
      {!stepUp && flow.risk && MFA_STEPS.has(flow.step) ? (
        <Notice kind="info">
          <strong>Why we are asking: </strong>
          {flow.risk.message}
        </Notice>
      ) : null}
      {stepUp && MFA_STEPS.has(flow.step) ? <p>This change needs a recent second factor.</p> : null}
      {body}
      {flow.step !== 'choose_method' && MFA_STEPS.has(flow.step) ? <OtherMethods f={f} methods={methods} current={current} /> : null}
      {final ? (
        <p>
          <a class="button" href={props.restartHref}>
            Start again
          </a>
        </p>
      ) : null}
    </Layout>
  );
}
