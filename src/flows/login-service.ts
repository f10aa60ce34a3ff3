import { fromPromise } from 'xstate';
import type { Logger } from '../logger.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/config.ts';
import type { Db } from '../db/db.ts';
import type { Audit } from '../audit/audit.ts';
import type { Jobs } from '../jobs/jobs.ts';
import type { PasswordService } from '../auth/password.ts';
import type { TotpService } from '../auth/totp.ts';
import type { RecoveryService } from '../auth/recovery.ts';
import type { SessionRecord, SessionService } from '../session/sessions.ts';
import type { TokenService } from '../tokens/access-token.ts';
import { provideMfa, type SecondFactorPorts } from './mfa-actors.ts';
import { loginMachine, LOGIN_MACHINE_VERSION, type LoginContext, type LoginOutput, type PasskeyResult } from '../../machines/login.machine.ts';
import { publishAmr, type FlowEffect, type RiskOutcome } from '../../machines/types.ts';
import { RISK_JOB, riskJobId } from '../../workers/queues.ts';
import { createFlowRuntime, type FlowRow } from './runtime.ts';
import { createLoginEffects } from './login-effects.ts';

export interface Completion {
  sessionToken: string;
  session: SessionRecord;
  tokens?: { access_token: string; token_type: 'Bearer'; expires_in: number; refresh_token?: string };
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
  passkey?: {
    start(flowId: string): Promise<Record<string, unknown>>;
    verify(flowId: string, response: Record<string, unknown>): Promise<PasskeyResult>;
  };
}) {
  const { db, clock, config } = deps;

  const machine = loginMachine.provide({
    actors: {
      verifyPassword: fromPromise(({ input }) => deps.passwords.verifyLogin(input.identifier, input.password)),
      // Scored by the risk worker through the job queue; the machine's deadline fails closed.
      scoreRisk: fromPromise(async ({ input }) => {
        const r = await deps.jobs.request<RiskOutcome>(
          config.RISK_QUEUE,
          RISK_JOB,
          { identityId: input.identityId, deviceId: input.deviceId, ip: input.ip, at: clock.now() },
          { jobId: riskJobId(input.flowId, 0), timeoutMs: config.RISK_TIMEOUT_MS },
        );
        // An answer we do not understand (another worker version, a bug) is no answer: fail closed.
        if (!r || !['allow', 'step_up', 'deny'].includes(r.decision) || !Array.isArray(r.reasons)) throw new Error('malformed risk result');
        return r;
      }),
      mfa: provideMfa({ db, clock, config, totp: deps.totp, recovery: deps.recovery, ports: deps.ports ?? {} }),
      startPasskey: fromPromise(async ({ input }) => {
        if (!deps.passkey) throw new Error('passkeys are not configured');
        return deps.passkey.start(input.flowId);
      }),
      verifyPasskey: fromPromise(async ({ input }) => {
        if (!deps.passkey) throw new Error('passkeys are not configured');
        return deps.passkey.verify(input.flowId, input.response);
      }),
    },
  });

  const runtime = createFlowRuntime({
    db,
    clock,
    type: 'login',
    machine,
    machineVersion: LOGIN_MACHINE_VERSION,
    ttlSeconds: config.FLOW_TTL_SECONDS,
    leaseMs: Math.max(30_000, config.RISK_TIMEOUT_MS + 15_000),
    logger: deps.logger,
  });
  const applyEffects = createLoginEffects({ db, clock, audit: deps.audit });

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

  /** Issue the session (and tokens) for the one request that finished the flow. */
  async function complete(flow: FlowRow): Promise<Completion | undefined> {
    const out = flow.snapshot.output as LoginOutput | undefined;
    if (!out || out.outcome !== 'allowed' || !out.identityId) return undefined;
    const ctx = flow.snapshot.context as unknown as LoginContext;
    const authTime = Math.floor(clock.now() / 1000);
    const amr = publishAmr(out.amr);
    const factorTimes = Object.fromEntries(out.amr.map((a) => [a, authTime]));
    const { token, session, evicted } = await deps.sessions.create({
      identityId: out.identityId,
      amr,
      acr: out.acr,
      authTime,
      factorTimes,
      deviceId: flow.device_id,
      ip: flow.ip,
      country: ctx.risk?.country ?? null,
    });
    await db.query('UPDATE flows SET session_id = $2 WHERE id = $1', [flow.id, session.id]);
    for (const id of evicted) await deps.audit.append({ type: 'session.revoked', subject: id, reason: 'EVICTED', data: { by: session.id } });
    await deps.audit.append({ type: 'session.created', subject: out.identityId, reason: out.acr, data: { session: session.id, flow: flow.id, amr } });
    await noticeNewDevice(flow, ctx, out.identityId, session.id);
    const completion: Completion = { sessionToken: token, session };
    if (flow.return_tokens) {
      const t = await deps.tokens.issue({
        sub: out.identityId,
        sid: session.id,
        amr,
        acr: out.acr,
        auth_time: authTime,
        roles: await deps.roleNames(out.identityId),
      });
      completion.tokens = { access_token: t.token, token_type: 'Bearer', expires_in: t.expiresIn };
      if (deps.refresh)
        completion.tokens.refresh_token = await deps.refresh.issue({ sessionId: session.id, identityId: out.identityId, ip: flow.ip ?? '', deviceId: flow.device_id });
    }
    return completion;
  }

  return {
    runtime,
    start(meta: { deviceId: string | null; ip: string; identifier?: string | null; returnTokens: boolean; method?: 'password' | 'passkey' }) {
      return runtime.create(
        {
          deviceId: meta.deviceId,
          ip: meta.ip,
          identifier: meta.identifier ?? null,
          maxPasswordAttempts: config.LOCKOUT_THRESHOLD,
          maxMfaAttempts: config.MFA_MAX_ATTEMPTS,
          riskTimeoutMs: config.RISK_TIMEOUT_MS,
          method: meta.method ?? 'password',
        },
        { deviceId: meta.deviceId, ip: meta.ip, returnTokens: meta.returnTokens },
      );
    },
    async submit(id: string, event: { type: string }): Promise<{ flow: FlowRow; completion?: Completion }> {
      const { flow, effects, finished } = await runtime.advance<FlowEffect>(id, event);
      const risk = (flow.snapshot.context as unknown as LoginContext).risk;
      await applyEffects(flow, effects, risk);
      return { flow, completion: finished ? await complete(flow) : undefined };
    },
  };
}

export type LoginService = ReturnType<typeof createLoginService>;
