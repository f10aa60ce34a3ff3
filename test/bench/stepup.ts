/**
 * Step-up phases of the benchmark (test/bench/bench.ts): set-up of users with a confirmed TOTP
 * factor or a WebAuthn credential and a live aal1 session each, and the operation one closed-loop
 * client repeats: one complete RFC 9470 step-up of a session over HTTP, ending in `step: 'done'`.
 *
 *   POST /auth/stepup { acr_values: aal2 }           → 201, a flow (at `totp` / `webauthn` when the
 *                                                       user has that single method)
 *  [POST /auth/stepup/:id { type: 'choose', method } → only if the flow is at `choose_method`]
 *   POST /auth/stepup/:id { type: 'totp', code } or { type: 'webauthn', response } → 200, `done`
 *
 * Each step-up rotates the session; Client keeps the new cookie for the user's next step-up.
 */
import { performance } from 'node:perf_hooks';
import { generate } from 'otplib';
import { AuthenticatorEmulator, PasskeysCredentialsMemoryRepository, WebAuthnEmulator } from 'nid-webauthn-emulator';
import { ACR } from '../../machines/types.ts';
import { Client, IP, device, oathtool, type TestServer } from '../helpers/server.ts';

export const WEBAUTHN_ORIGIN = 'https://threshold.test';
/** Server env the WebAuthn phase needs (relying party threshold.test). */
export const WEBAUTHN_ENV = { WEBAUTHN_RP_ID: 'threshold.test', WEBAUTHN_ORIGINS: WEBAUTHN_ORIGIN };

const STEP_MS = 30_000;
type Flow = { id?: string; step?: string; code?: string; challenge?: Record<string, unknown> };
type Answer = (flow: Flow) => Promise<Record<string, unknown>> | Record<string, unknown>;

/** Runs `count` set-up tasks, `parallel` at a time. */
async function pool<T>(count: number, parallel: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, async () => {
    while (next < count) {
      const i = next++;
      out[i] = await task(i);
    }
  }));
  return out;
}

/** A user with a password-only (aal1) session, as after a low-risk password login. */
async function userWithSession(srv: TestServer, tag: string, i: number) {
  const email = `bench-${tag}-${i}-${Date.now()}@example.test`;
  const user = await srv.services.users.create({ email, roles: ['PATHOLOGIST'] });
  const now = Math.floor(srv.clock.now() / 1000);
  const dev = device(`${tag}-${i}`);
  const { token, session } = await srv.services.sessions.create({
    identityId: user.id, amr: ['pwd'], acr: ACR.aal1, authTime: now, factorTimes: { pwd: now }, deviceId: dev, ip: IP.london, country: 'GB',
  });
  const client = new Client(srv.url, { 'x-device-id': dev, 'x-forwarded-for': IP.london });
  client.cookies.set('threshold_session', token);
  return { user, session, client };
}

/** Counts HTTP requests of completed step-ups (2, or 3 with a method choice). */
class RequestCount {
  requests = 0;
  stepUps = 0;
  get perStepUp() {
    return this.stepUps ? Math.round((this.requests / this.stepUps) * 100) / 100 : 0;
  }
  reset() {
    this.requests = this.stepUps = 0;
  }
}

/** One full step-up of `c`'s session; null on success or a short failure label. */
async function stepUp(c: Client, method: 'totp' | 'webauthn', answer: Answer, count: RequestCount): Promise<string | null> {
  let requests = 1;
  const start = await c.post('/auth/stepup', { acr_values: ACR.aal2 });
  if (start.status !== 201) return `start: status ${start.status} ${start.body?.code ?? ''}`.trim();
  let flow: Flow = start.body;
  if (flow.step === 'choose_method') {
    requests++;
    const chose = await c.post(`/auth/stepup/${flow.id}`, { type: 'choose', method });
    if (chose.status !== 200) return `choose: status ${chose.status} ${chose.body?.code ?? ''}`.trim();
    flow = chose.body;
  }
  if (flow.step !== method) return `flow at step ${flow.step ?? '?'}, expected ${method}`;
  requests++;
  const done = await c.post(`/auth/stepup/${flow.id}`, await answer(flow));
  if (done.status !== 200 || done.body?.step !== 'done') return `${method}: status ${done.status} step=${done.body?.step ?? '?'} ${done.body?.code ?? ''}`.trim();
  count.requests += requests;
  count.stepUps++;
  return null;
}

/**
 * TOTP: a time step is accepted once per factor, so each step-up takes the user that has waited
 * longest (FIFO) and computes its code for the server clock's current time. When even that user
 * has spent the current step, every user has, and the server clock (OffsetClock) moves to the
 * middle of the next step: virtual time passing, as for real users who step up minutes apart.
 * Placing the clock mid-step keeps real-time step boundaries ≥15 s away from any jump, so a code
 * in flight is never more than one step (the accepted drift) behind.
 */
export async function prepareTotp(srv: TestServer, users: number, parallel: number) {
  const { clock } = srv;
  const stepOf = (ms: number) => Math.floor(ms / STEP_MS);
  const toMidOfNextStep = () => clock.advance((stepOf(clock.now()) + 1) * STEP_MS + STEP_MS / 2 - clock.now());
  const codeAt = (secret: string, ms: number) => generate({ secret, epoch: Math.floor(ms / 1000) });

  const pool_ = await pool(users, parallel, async (i) => {
    const { user, client } = await userWithSession(srv, 'totp', i);
    const { id, secret } = await srv.services.totp.enrol(user.id, user.email);
    const at = clock.now();
    const code = await codeAt(secret, at);
    if (i === 0 && code !== oathtool(secret, at)) throw new Error('otplib and oathtool disagree on a TOTP code');
    await srv.services.totp.confirm(user.id, id, code); // spends this step
    return { secret, client, lastStep: stepOf(at) };
  });
  toMidOfNextStep(); // every confirmation's step is now spent and past
  const queue = [...pool_];
  const count = new RequestCount();
  let clockMoves = 0;

  const op = async (): Promise<string | null> => {
    const u = queue.shift();
    if (!u) return 'no free TOTP user (BENCH_TOTP_USERS < BENCH_CLIENTS)';
    try {
      if (u.lastStep >= stepOf(clock.now())) {
        toMidOfNextStep();
        clockMoves++;
      }
      return await stepUp(u.client, 'totp', async () => {
        const at = clock.now();
        u.lastStep = stepOf(at);
        return { type: 'totp', code: await codeAt(u.secret, at) };
      }, count);
    } finally {
      queue.push(u);
    }
  };
  return {
    op,
    count,
    users,
    clockMoves: () => clockMoves,
    reset: () => {
      count.reset();
      clockMoves = 0;
    },
  };
}

/**
 * WebAuthn: one registered security key per user (nid-webauthn-emulator, signing in this
 * process); challenges are per flow, so one user steps up again and again (one user per client).
 * The emulator's synchronous signing (`getJSON`) is timed: a real client signs on its own device.
 * `users` must be at least the number of closed-loop clients.
 */
export async function prepareWebAuthn(srv: TestServer, users: number, parallel: number) {
  const emu = new WebAuthnEmulator(new AuthenticatorEmulator({ credentialsRepository: new PasskeysCredentialsMemoryRepository() }));
  const clients = await pool(users, parallel, async (i) => {
    const { user, session, client } = await userWithSession(srv, 'webauthn', i);
    const flowKey = `session:${session.id}`; // as POST /auth/mfa/webauthn/options does
    const options = await srv.services.webauthn.registrationOptions({ identityId: user.id, email: user.email, displayName: user.email, flowKey, passkey: false });
    const response = emu.createJSON(WEBAUTHN_ORIGIN, options);
    await srv.services.webauthn.register({ identityId: user.id, flowKey, response, label: 'Bench key' });
    return client;
  });
  const count = new RequestCount();
  const sign = { ms: 0, n: 0 };
  const answer: Answer = (flow) => {
    const t = performance.now();
    const response = emu.getJSON(WEBAUTHN_ORIGIN, flow.challenge as never);
    sign.ms += performance.now() - t;
    sign.n++;
    return { type: 'webauthn', response };
  };
  // Client w owns user w: its step-ups are sequential, so each uses the session cookie the last one set.
  const op = (w: number) => stepUp(clients[w], 'webauthn', answer, count);
  return {
    op,
    count,
    users,
    sign,
    reset: () => {
      count.reset();
      Object.assign(sign, { ms: 0, n: 0 });
    },
  };
}
