/** @jsxImportSource hono/jsx */
import { Layout, Notice } from './layout.tsx';
import { METHOD_NAMES } from './messages.ts';

export interface SessionItem {
  id: string;
  current: boolean;
  device: string | null;
  country: string | null;
  createdAt: string;
  lastSeenAt: string;
  amr: string[];
}
export interface DeviceItem {
  id: string;
  name: string | null;
  country: string | null;
  lastSeenAt: string | null;
  expiresAt: string | null;
}
export interface FactorItem {
  id: string;
  type: string;
  label: string;
  createdAt: string | null;
  lastUsedAt: string | null;
  remaining?: number;
  passkey?: boolean;
}

const regions = new Intl.DisplayNames(['en'], { type: 'region' });
const place = (cc: string | null) => {
  if (!cc) return 'Unknown place';
  try {
    return regions.of(cc) ?? cc;
  } catch {
    return cc;
  }
};
const when = (iso: string | null) =>
  iso ? new Date(iso).toLocaleString('en-GB', { timeZone: 'UTC', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' }) + ' UTC' : 'never';

function Csrf(props: { token: string }) {
  return <input type="hidden" name="csrf" value={props.token} />;
}

/** One button that posts a small form (ending a session, removing a factor…). */
function Action(props: { action: string; csrf: string; label: string; describedBy?: string; danger?: boolean }) {
  return (
    <form method="post" action={props.action} class="inline">
      <Csrf token={props.csrf} />
      <button type="submit" class={props.danger ? 'danger' : 'secondary'} aria-describedby={props.describedBy}>
        {props.label}
      </button>
    </form>
  );
}

export function AccountPage(props: {
  email: string;
  /** The password was found in a breach (GET /auth/me): it must be changed. */
  passwordChangeRequired?: boolean;
  csrf: string;
  sessions: SessionItem[];
  factors: FactorItem[];
  devices: DeviceItem[] | null;
  notice?: string | null;
  error?: string | null;
}) {
  const { csrf } = props;
  const others = props.sessions.filter((s) => !s.current).length;
  const recovery = props.factors.find((f) => f.type === 'recovery_code');
  const factors = props.factors.filter((f) => f.type !== 'recovery_code');
  return (
    <Layout title="Your account" scripts={['webauthn.js', 'account.js']} wide>
      <h1>Your account</h1>
      <p>
        Signed in as <strong>{props.email}</strong>.
      </p>
      <Action action="/account/logout" csrf={csrf} label="Sign out" />
      {props.passwordChangeRequired ? (
        <Notice kind="error" id="password-change">
          Your password appeared in a data breach elsewhere, so it is no longer safe. Please change it now.
        </Notice>
      ) : null}
      {props.notice ? <Notice kind="info">{props.notice}</Notice> : null}
      {props.error ? (
        <Notice kind="error" id="account-error">
          {props.error}
        </Notice>
      ) : null}
      <div id="js-error" class="notice error" role="alert" hidden></div>
      {/* account.js posts this when adding a passkey needs a fresh second factor first. */}
      <form method="post" action="/account/confirm" id="confirm-form" hidden>
        <Csrf token={csrf} />
      </form>

      <section aria-labelledby="sessions-h">
        <h2 id="sessions-h">Where you are signed in</h2>
        <table>
          <caption class="sr-only">Your sessions</caption>
          <thead>
            <tr>
              <th scope="col">Device</th>
              <th scope="col">Place</th>
              <th scope="col">Last seen</th>
              <th scope="col">Signed in</th>
              <th scope="col">
                <span class="sr-only">Action</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {props.sessions.map((s) => (
              <tr>
                <td id={`dev-${s.id}`}>{s.current ? 'This device' : s.device ? `Device ${s.device}` : 'Another device'}</td>
                <td>{place(s.country)}</td>
                <td>{when(s.lastSeenAt)}</td>
                <td>{when(s.createdAt)}</td>
                <td>{s.current ? <span class="hint">Current</span> : <Action action={`/account/sessions/${encodeURIComponent(s.id)}/end`} csrf={csrf} label="Sign out" describedBy={`dev-${s.id}`} />}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {others > 0 ? <Action action="/account/sessions/end-others" csrf={csrf} label={`Sign out everywhere else (${others})`} danger /> : null}
      </section>

      {props.devices ? (
        <section aria-labelledby="devices-h">
          <h2 id="devices-h">Remembered devices</h2>
          <p class="hint">Devices you chose to remember after confirming it was you. Signing in from one of them is less likely to ask for a second factor.</p>
          {props.devices.length ? (
            <ul class="factors">
              {props.devices.map((d) => (
                <li>
                  <h3 id={`rd-${d.id}`}>{d.name || 'A device'}</h3>
                  <p class="hint">
                    {place(d.country)} · last used {when(d.lastSeenAt)} · remembered until {when(d.expiresAt)}
                  </p>
                  <Action action={`/account/devices/${encodeURIComponent(d.id)}/forget`} csrf={csrf} label="Forget" describedBy={`rd-${d.id}`} danger />
                </li>
              ))}
            </ul>
          ) : (
            <p>No remembered devices.</p>
          )}
        </section>
      ) : null}

      <section aria-labelledby="factors-h">
        <h2 id="factors-h">How you confirm it is you</h2>
        {factors.length ? (
          <ul class="factors">
            {factors.map((f) => (
              <li>
                <h3 id={`f-${f.id}`}>{f.label}</h3>
                <p class="hint">
                  {METHOD_NAMES[f.type] ?? f.type}
                  {f.passkey ? ' (passkey)' : ''} · added {when(f.createdAt)} · last used {when(f.lastUsedAt)}
                </p>
                <form method="post" action={`/account/factors/${encodeURIComponent(f.id)}/rename`} class="inline">
                  <Csrf token={csrf} />
                  <label for={`label-${f.id}`}>New name</label>
                  <input id={`label-${f.id}`} name="label" type="text" required maxlength={64} value={f.label} />
                  <button type="submit" class="secondary">
                    Rename
                  </button>
                </form>
                <Action action={`/account/factors/${encodeURIComponent(f.id)}/remove`} csrf={csrf} label="Remove" describedBy={`f-${f.id}`} danger />
              </li>
            ))}
          </ul>
        ) : (
          <p>You have no second factor yet. Add one so a stolen password is not enough to sign in as you.</p>
        )}
        <h3>Add a way to confirm it is you</h3>
        <Action action="/account/totp" csrf={csrf} label="Add an authenticator app" />
        <form method="post" action="/account/passkey" id="passkey-form">
          <Csrf token={csrf} />
          <input type="hidden" name="response" value="" />
          <label for="passkey-label">Name for a new passkey</label>
          <input id="passkey-label" name="label" type="text" maxlength={64} value="Passkey" />
          <p class="js-off">Adding a passkey needs JavaScript, which is turned off in this browser.</p>
          <button type="button" id="passkey-add" hidden>
            Add a passkey
          </button>
        </form>
        <h3>Recovery codes</h3>
        <p>{recovery ? `You have ${recovery.remaining ?? 0} unused recovery codes.` : 'You have no recovery codes.'}</p>
        <Action action="/account/recovery-codes" csrf={csrf} label="Get new recovery codes" />
      </section>
    </Layout>
  );
}

/** Adding an authenticator app: the QR code (an SVG data URI: no script) and the key to type by hand. */
export function TotpSetupPage(props: { csrf: string; id: string; qr: string; secret: string; uri: string; error?: string | null }) {
  const err = !!props.error;
  return (
    <Layout title="Add an authenticator app">
      <h1>Add an authenticator app</h1>
      {props.error ? (
        <Notice kind="error" id="code-error">
          {props.error}
        </Notice>
      ) : null}
      <ol>
        <li>
          <p>Scan this code with your authenticator app.</p>
          <img class="qr" src={props.qr} width={200} height={200} alt="QR code for your authenticator app; the key below says the same" />
          <p>
            Or type this key: <code class="secret">{props.secret.replace(/(.{4})/g, '$1 ').trim()}</code>
          </p>
        </li>
        <li>
          <form method="post" action={`/account/totp/${encodeURIComponent(props.id)}/confirm`}>
            <input type="hidden" name="csrf" value={props.csrf} />
            <input type="hidden" name="uri" value={props.uri} />
            <label for="code">Enter the six-digit code the app shows</label>
            <input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required maxlength={10} autofocus aria-describedby={err ? 'code-error' : undefined} aria-invalid={err ? 'true' : undefined} />
            <button type="submit">Confirm</button>
          </form>
        </li>
      </ol>
      <p>
        <a href="/account">Cancel</a>
      </p>
    </Layout>
  );
}

/** Recovery codes, shown once. */
export function CodesPage(props: { codes: string[]; heading: string }) {
  return (
    <Layout title="Your recovery codes">
      <h1>{props.heading}</h1>
      <Notice kind="info">Save these recovery codes somewhere safe now: they are shown only this once. Each code works one time, if you lose your other factors.</Notice>
      <ol class="codes">
        {props.codes.map((c) => (
          <li>
            <code>{c}</code>
          </li>
        ))}
      </ol>
      <p>
        <a class="button" href="/account">
          I have saved them
        </a>
      </p>
    </Layout>
  );
}
