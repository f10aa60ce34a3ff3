import { fromPromise } from 'xstate';
import type { Logger } from '../logger.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/config.ts';
import type { Db } from '../db/db.ts';
import type { Audit, AuditEvent } from '../audit/audit.ts';
import type { Jobs } from '../jobs/jobs.ts';
import type { PasswordService } from '../authn/methods/password/password.ts';
import type { TotpService } from '../authn/methods/totp/totp.ts';
import type { RecoveryService } from '../authn/methods/recovery/recovery.ts';
import type { SessionRecord, SessionService } from '../session/sessions.ts';
import type { TokenService } from '../tokens/access-token.ts';
import { provideMfa, type SecondFactorPorts } from './mfa-actors.ts';
import { FIRST_FACTORS, type LoginActors } from '../authn/methods/registry.ts';
import type { PasskeyPort } from '../authn/methods/passkey/index.ts';
import { loginMachine, LOGIN_FLOW_VERSION, type LoginContext, type LoginInput, type LoginOutput } from '../../machines/login.machine.ts';
import { publishAmr, type FlowEffect, type LoginDenialReason, type RiskOutcome } from '../../machines/types.ts';
import { AppError, isAppError } from '../errors.ts';
import { requestRiskScore } from './risk-request.ts';
import type { RiskRecorder } from '../risk/recorder.ts';
import { createFlowRuntime, type FlowRow } from './runtime.ts';
import { createLoginEffects } from './login-effects.ts';
import { deviceRef, loadBound, type BindingFailure, type FlowClient } from './binding.ts';
import type { CompromisedPasswords } from '../authn/passwords/compromised.ts';
import type { RememberedDevices, UseResult } from '../session/remembered-devices.ts';

/** The steps run, in this order, once a flow allowed a login. */
export const COMPLETION_STEPS = ['decideSession', 'tokens', 'recordSuccess', 'audit', 'notice'] as const;
export type CompletionStepName = (typeof COMPLETION_STEPS)[number];

/** Whether a password event's password was right; null when none was checked. */
export type PasswordCheck = 'passed' | 'failed' | null;

export interface Completion {
  sessionToken: string;
  session: SessionRecord;
  tokens?: { access_token: string; token_type: 'Bearer'; expires_in: number; refresh_token?: string };
  /** The password was found breached: the user must choose a new one (POST /auth/password). */
  passwordChangeRequired?: boolean;
  /** The device was remembered (the user asked, after a passed step-up): the cookie to set. */
  remember?: { token: string; expiresAt: number };
}

export function createLoginService(deps: {
  db: Db;
  clock: Clock;
  /** Flow transitions at debug level (src/flows/runtime.ts). */
  logger?: Pick<Logger, 'debug'>;
  config: Config;
  audit: Audit;
  jobs: Jobs;
  passwords: PasswordService;
  totp: TotpService;
  recovery: RecoveryService;
  sessions: SessionService;
  tokens: TokenService;
  roleNames: (identityId: string) => Promise<string[]>;
  ports?: SecondFactorPorts;
  /** New-device notice: "this wasn't me" tokens and the email to the user. */
  notice?: {
    create(o: { identityId: string; sessionId: string; loginEventId: string }): Promise<string>;
    send(identityId: string, data: Record<string, string>, key: string): Promise<void>;
  };
  /** Refresh tokens for clients that asked for tokens. */
  refresh?: { issue(o: { sessionId: string; identityId: string; ip: string; deviceId: string | null }): Promise<string> };
  /** Discoverable-credential sign-in; without it a passkey flow fails closed. */
  passkey?: PasskeyPort;
  /** Shadow decisions and step-up labels on recorded login events (src/risk/recorder.ts). */
  risk?: RiskRecorder;
  /** Breached passwords proven at sign-in flag the account (src/authn/passwords/compromised.ts). */
  compromised?: CompromisedPasswords;
  /** Remembered devices (issue 12); without it nothing is remembered and no token lowers risk. */
  remembered?: RememberedDevices;
}) {
  const { db, clock, config } = deps;

  const firstFactorActors: LoginActors = Object.assign({}, ...FIRST_FACTORS.map((m) => m.loginActors?.({ passwords: deps.passwords, passkey: deps.passkey, compromised: deps.compromised }) ?? {}));
  const machine = loginMachine.provide({
    actors: {
      // First-factor methods (src/authn/methods/) provide how they verify.
      ...firstFactorActors,
      // Scored by the risk worker through the job queue; the machine's deadline fails closed.
      scoreRisk: fromPromise(async ({ input }) => {
        // A remembered device counts only for the identity that remembered it, on that device, while live.
        const remembered = input.rememberedDevice ? await deps.remembered?.isLive(input.rememberedDevice, input.identityId, input.deviceId) : false;
        return requestRiskScore({ jobs: deps.jobs, config, clock }, input, { rememberedDevice: remembered === true });
      }),
      mfa: provideMfa({ db, clock, config, totp: deps.totp, recovery: deps.recovery, ports: deps.ports ?? {} }),
    },
  });

  const runtime = createFlowRuntime({
    db,
    clock,
    type: 'login',
    machine,
    machineVersion: LOGIN_FLOW_VERSION,
    ttlSeconds: config.FLOW_TTL_SECONDS,
    leaseMs: Math.max(30_000, config.RISK_TIMEOUT_MS + 15_000),
    logger: deps.logger,
  });
  const effects = createLoginEffects({ db, clock, audit: deps.audit, risk: deps.risk });

  /**
   * Email the user once after a login from a new device or country (not on their very first
   * login), with a single-use link that revokes this session and labels the login fraudulent.
   */
  async function noticeNewDevice(flow: FlowRow, ctx: LoginContext, identityId: string, sessionId: string) {
    const reasons = ctx.risk?.reasons ?? [];
    const hasHistory = (ctx.risk?.signals as { details?: { hasHistory?: boolean } } | null)?.details?.hasHistory === true;
    if (!deps.notice || !hasHistory || !(reasons.includes('NEW_DEVICE') || reasons.includes('NEW_COUNTRY'))) return;
    const ev = await db.query<{ id: string }>("SELECT id FROM login_events WHERE flow_id = $1 AND outcome = 'succeeded' LIMIT 1", [flow.id]);
    if (!ev.rows[0]) return;
    const token = await deps.notice.create({ identityId, sessionId, loginEventId: ev.rows[0].id });
    await deps.notice.send(
      identityId,
      {
        device: flow.device_id ? `device …${flow.device_id.slice(-6)}` : 'an unknown device',
        ...(ctx.risk?.country ? { location: ctx.risk.country } : {}),
        time: new Date(clock.now()).toISOString(),
        revokeUrl: `${config.PUBLIC_URL.replace(/\/$/, '')}/auth/report/${token}`,
      },
      ev.rows[0].id,
    );
  }

  /** What the completion steps share: the finished flow, and what each step produced. */
  interface Finishing {
    flow: FlowRow;
    ctx: LoginContext;
    identityId: string;
    out: LoginOutput;
    authTime: number;
    amr: string[];
    created?: { token: string; session: SessionRecord; evicted: string[] };
    tokens?: Completion['tokens'];
    /** Audit events of the transition that finished the flow (risk.decided…), written with the outcome's. */
    pending: AuditEvent[];
  }

  /**
   * What happens once the flow allowed a login, in this order: success is declared only after the
   * session (and any tokens) exist, so a session the cap refuses is never recorded (or audited)
   * as a success and never makes the device known to risk history. The new-device notice needs
   * the recorded login event, so it comes last.
   */
  const completionSteps: { name: CompletionStepName; run(f: Finishing): Promise<void> }[] = [
    {
      name: 'decideSession',
      async run(f) {
        // The account may have been disabled or locked since its password was checked (a second
        // factor or the risk assessment takes time): sessions.create refuses such an account
        // (ACCOUNT_LOCKED) in the same statement that would insert the session.
        f.created = await deps.sessions.create({
          identityId: f.identityId,
          amr: f.amr,
          acr: f.out.acr,
          authTime: f.authTime,
          factorTimes: Object.fromEntries(f.out.amr.map((a) => [a, f.authTime])),
          deviceId: f.flow.device_id,
          ip: f.flow.ip,
          country: f.ctx.risk?.country ?? null,
        });
        // Evictions happened whatever comes next: audited here, not with the success.
        await deps.audit.appendMany(f.created.evicted.map((id) => ({ type: 'session.revoked' as const, subject: id, reason: 'EVICTED', data: { by: f.created!.session.id } })));
      },
    },
    {
      name: 'tokens',
      async run(f) {
        if (!f.flow.return_tokens) return;
        const session = f.created!.session;
        const t = await deps.tokens.issue({
          sub: f.identityId,
          sid: session.id,
          amr: f.amr,
          acr: f.out.acr,
          auth_time: f.authTime,
          roles: await deps.roleNames(f.identityId),
        });
        f.tokens = { access_token: t.token, token_type: 'Bearer', expires_in: t.expiresIn };
        if (deps.refresh)
          f.tokens.refresh_token = await deps.refresh.issue({ sessionId: session.id, identityId: f.identityId, ip: f.flow.ip ?? '', deviceId: f.flow.device_id });
      },
    },
    {
      name: 'recordSuccess',
      async run(f) {
        const session = f.created!.session;
        await effects.loginEvent(f.flow, 'succeeded', f.identityId, f.ctx.risk, { factors: f.out.factors, sessionId: session.id });
      },
    },
    {
      name: 'audit',
      async run(f) {
        const { session } = f.created!;
        const base = { flow: f.flow.id, device: deviceRef(f.flow.device_id) };
        // One group commit for the whole login (src/audit/audit.ts), chained in this order.
        await deps.audit.appendMany([
          ...f.pending.splice(0),
          { type: 'login.succeeded', subject: f.identityId, reason: f.out.factors.join(' '), data: { ...base, amr: f.out.amr } },
          { type: 'session.created', subject: f.identityId, reason: f.out.acr, data: { session: session.id, flow: f.flow.id, amr: f.amr } },
        ]);
      },
    },
    {
      name: 'notice',
      run: (f) => noticeNewDevice(f.flow, f.ctx, f.identityId, f.created!.session.id),
    },
  ];

  if (completionSteps.map((s) => s.name).join() !== COMPLETION_STEPS.join()) throw new Error('completion steps out of order');

  /** The session cap refused the session: the login ends denied, recorded and audited as such. */
  async function refuse(f: Finishing): Promise<FlowRow> {
    const reason: LoginDenialReason = 'SESSION_LIMIT_REACHED';
    await effects.loginEvent(f.flow, 'denied', f.identityId, f.ctx.risk, { reason, factors: f.out.factors });
    await deps.audit.appendMany([...f.pending.splice(0), { type: 'login.denied', subject: f.identityId, reason, data: { flow: f.flow.id, device: deviceRef(f.flow.device_id) } }]);
    return runtime.overrideOutcome(f.flow, 'denied', { outcome: 'denied', reason });
  }

  /** The account was disabled or locked while the login was under way: it ends locked, as any locked login. */
  async function refuseUnusable(f: Finishing): Promise<FlowRow> {
    const reason = 'ACCOUNT_LOCKED';
    await effects.loginEvent(f.flow, 'locked', f.identityId, f.ctx.risk, { reason, factors: f.out.factors });
    await deps.audit.append({ type: 'login.locked', subject: f.identityId, reason, data: { flow: f.flow.id, device: deviceRef(f.flow.device_id) } });
    return runtime.overrideOutcome(f.flow, 'locked', { outcome: 'locked', reason });
  }

  /**
   * Runs the completion steps for the one request that finished the flow. Answers the flow as it
   * now stands (denied when the session was refused) and, when a session exists, its token.
   */
  async function complete(flow: FlowRow, pending: AuditEvent[], remember = false): Promise<{ flow: FlowRow; completion?: Completion }> {
    const out = flow.snapshot.output as LoginOutput | undefined;
    if (!out || out.outcome !== 'allowed' || !out.identityId) {
      await deps.audit.appendMany(pending);
      return { flow };
    }
    const authTime = Math.floor(clock.now() / 1000);
    const f: Finishing = {
      flow,
      ctx: flow.snapshot.context as unknown as LoginContext,
      identityId: out.identityId,
      out,
      authTime,
      amr: publishAmr(out.amr),
      pending,
    };
    for (const step of completionSteps) {
      try {
        await step.run(f);
      } catch (e) {
        if (step.name === 'decideSession' && isAppError(e) && e.code === 'SESSION_LIMIT_REACHED') return { flow: await refuse(f) };
        if (step.name === 'decideSession' && isAppError(e) && e.code === 'ACCOUNT_LOCKED') return { flow: await refuseUnusable(f) };
        // The client never gets this session's token: do not leave it live, nor let risk history
        // trust the device for a login that did not complete (tokens die with their session).
        // What the transition itself did is still on the record.
        await deps.audit.appendMany(f.pending.splice(0)).catch(() => {});
        if (f.created) {
          await deps.sessions.revoke(f.created.session.id, 'LOGIN_INCOMPLETE').catch(() => {});
          await db
            .query("UPDATE login_events SET outcome = 'failed' WHERE flow_id = $1 AND outcome = 'succeeded'", [flow.id])
            .catch(() => {});
        }
        throw e;
      }
    }
    const completion: Completion = { sessionToken: f.created!.token, session: f.created!.session };
    if (f.tokens) completion.tokens = f.tokens;
    // Known from the password step (its own read of the account, or the breach check it ran): no statement here.
    if (f.ctx.passwordChangeRequired) completion.passwordChangeRequired = true;
    if (remember) {
      const r = await rememberDevice(f);
      if (r) completion.remember = r;
    }
    return { flow, completion };
  }

  /**
   * Remembers the device after a login that passed a step-up, when the user asked: only a second
   * factor proven in this flow (a step-up the risk asked for) creates one — never an allowed
   * login, never a remembered device itself. Days: REMEMBER_DEVICE_DAYS, capped by the policy's
   * band (`rememberDeviceDays`); 0 remembers nothing.
   */
  async function rememberDevice(f: Finishing): Promise<Completion['remember'] | undefined> {
    const risk = f.ctx.risk as (RiskOutcome & { rememberDays?: number }) | null;
    if (!deps.remembered || !f.flow.device_id || risk?.decision !== 'step_up' || f.out.factors.length < 2) return undefined;
    const days = Math.min(config.REMEMBER_DEVICE_DAYS, risk.rememberDays ?? config.REMEMBER_DEVICE_DAYS);
    if (days <= 0) return undefined;
    const r = await deps.remembered.create({ identityId: f.identityId, deviceId: f.flow.device_id, userAgent: f.ctx.userAgent ?? null, country: risk.country, days });
    return { token: r.token, expiresAt: r.expiresAt };
  }

  /** A flow presented by another device than the one that started it: audited, then answered as unknown. */
  const refused = (row: FlowRow, why: BindingFailure, client: FlowClient) =>
    deps.audit.append({
      type: 'flow.refused',
      subject: row.identity_id,
      reason: why,
      data: { flow: row.id, flowType: row.type, device: deviceRef(row.device_id), presentedDevice: deviceRef(client.deviceId) },
    });

  /** Loads a login flow for the browser (or API client) that started it, and no other. */
  const open = (id: string, client: FlowClient) =>
    loadBound(runtime.load, id, { deviceId: client.deviceId }, (row, why) => refused(row, why, client));

  return {
    runtime,
    open,
    /**
     * The remember cookie presented when a login starts: consumed and rotated (the answer carries
     * the next token), or refused — a replayed token forgets its device.
     */
    presentRemembered(token: string | null | undefined, deviceId: string | null): Promise<UseResult> {
      if (!deps.remembered || config.REMEMBER_DEVICE_DAYS === 0) return Promise.resolve({ ok: false, reason: 'NONE' });
      return deps.remembered.use(token, deviceId);
    },
    start(meta: { deviceId: string | null; ip: string; userAgent?: string | null; identifier?: string | null; returnTokens: boolean; method?: LoginInput['method']; rememberedDevice?: string | null }) {
      return runtime.create(
        {
          deviceId: meta.deviceId,
          ip: meta.ip,
          userAgent: meta.userAgent?.slice(0, 1000) ?? null,
          identifier: meta.identifier ?? null,
          maxPasswordAttempts: config.LOCKOUT_THRESHOLD,
          maxMfaAttempts: config.MFA_MAX_ATTEMPTS,
          riskTimeoutMs: config.RISK_TIMEOUT_MS,
          method: meta.method ?? 'password',
          ...(meta.rememberedDevice ? { rememberedDevice: meta.rememberedDevice } : {}),
        },
        { deviceId: meta.deviceId, ip: meta.ip, returnTokens: meta.returnTokens },
      );
    },
    /**
     * Apply one client event, from the browser that started the flow (`client`; another device
     * answers like an unknown flow). `passwordCheck` says, for a password event, whether the
     * password was right (`passed`) or not (`failed`; a locked account reads as `failed` too), and
     * is null when no password was checked (another event, or a dependency failed): the login
     * limiter counts from it, never from the answer's body.
     */
    async submit(id: string, submitted: { type: string; remember?: boolean }, client: FlowClient): Promise<{ flow: FlowRow; completion?: Completion; passwordCheck: PasswordCheck }> {
      // `remember` rides on the factor event (API compatible: optional); the machine never sees it.
      const { remember, ...event } = submitted;
      const row = await open(id, client);
      const advanced = await runtime.advance<FlowEffect>(id, event, row);
      const ctx = advanced.flow.snapshot.context as unknown as LoginContext;
      // The finishing transition's audit events are written with the completion's, in one batch.
      const pending = await effects.apply(advanced.flow, advanced.effects, ctx.risk, { deferAudit: advanced.finished });
      const passwordCheck: PasswordCheck =
        event.type !== 'password'
          ? null
          : advanced.effects.some((e) => e.type === 'login.failed' && e.factor === 'pwd')
            ? 'failed'
            : ctx.amr.includes('pwd')
              ? 'passed'
              : null;
      if (!advanced.finished) return { flow: advanced.flow, passwordCheck };
      return { ...(await complete(advanced.flow, pending, remember === true)), passwordCheck };
    },
  };
}

export type LoginService = ReturnType<typeof createLoginService>;
