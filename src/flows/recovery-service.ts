import { createHmac } from 'node:crypto';
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
import type { SessionService } from '../session/sessions.ts';
import { normalizeIdentifier } from '../authn/methods/password/password.ts';
import type { PasswordPolicy } from '../authn/passwords/policy.ts';
import { randomToken } from '../crypto/seal.ts';
import { AppError, isAppError } from '../errors.ts';
import { provideMfa, type SecondFactorPorts } from './mfa-actors.ts';
import { requestRiskScore } from './risk-request.ts';
import { createFlowRuntime, type FlowRow } from './runtime.ts';
import { deviceRef, loadBound, type FlowClient } from './binding.ts';
import { recoveryMachine, RECOVERY_FLOW_VERSION, type NewPasswordResult, type RecoveryEffect, type RecoveryOutput } from '../../machines/recovery.machine.ts';
import type { MfaMethod } from '../../machines/types.ts';

/** Wrong links a recovery flow takes before it locks (the link itself has 192 bits). */
const MAX_LINK_ATTEMPTS = 5;

export interface RecoveryClient extends FlowClient {
  ip: string;
  userAgent: string | null;
}

/**
 * Account recovery flows (issue 12 item 3): a request by identifier, a single-use link mailed to
 * a verified address, the account's second factor when it has one, a new password; then every
 * session and refresh family ends and the user is told. Risk-scored and audited throughout.
 */
export function createRecoveryFlows(deps: {
  db: Db;
  clock: Clock;
  logger?: Pick<Logger, 'debug' | 'warn'>;
  config: Config;
  audit: Audit;
  jobs: Jobs;
  passwords: PasswordService;
  totp: TotpService;
  recovery: RecoveryService;
  sessions: SessionService;
  methodsOf: (identityId: string) => Promise<MfaMethod[]>;
  ports?: SecondFactorPorts;
  /** The new-password rule of every path (breach corpus, NIST length, no identifier or product name). */
  policy: PasswordPolicy;
  /** HMAC key for link digests (derived from the master key). */
  key: Buffer;
  /** Queue the recovery email (the worker sends it). */
  sendLink: (o: { to: string; flowId: string; link: string; code: string; ttlMinutes: string }) => Promise<void>;
  /** Tell the user their password was reset. */
  notifyUser?: (identityId: string, template: 'factor_changed', data: Record<string, string>, key?: string) => Promise<void>;
}) {
  const { db, clock, config } = deps;
  const digest = (flowId: string, code: string) => createHmac('sha256', deps.key).update(`recovery-link:${flowId}:${code}`).digest('base64url');

  const machine = recoveryMachine.provide({
    actors: {
      /**
       * Consumes the link once (a race of many uses: one wins) and binds the flow to the device
       * that presented it, in the same statement: from here only that browser may continue.
       */
      consumeLink: fromPromise(async ({ input }) => {
        if (!/^[A-Za-z0-9_-]{20,64}$/.test(input.code)) return { ok: false, identityId: null, methods: [] };
        const now = new Date(clock.now());
        const { rows } = await db.query<{ identity_id: string }>(
          `WITH used AS (
             UPDATE recovery_links SET used_at = $3
              WHERE flow_id = $1 AND token_hash = $2 AND used_at IS NULL AND expires_at > $3 AND identity_id IS NOT NULL
              RETURNING identity_id),
           bound AS (UPDATE flows SET device_id = $4 WHERE id = $1 AND EXISTS (SELECT 1 FROM used))
           SELECT u.identity_id FROM used u JOIN identities i ON i.id = u.identity_id WHERE i.status = 'active'`,
          [input.flowId, digest(input.flowId, input.code), now, input.deviceId],
        );
        const identityId = rows[0]?.identity_id ?? null;
        if (!identityId) return { ok: false, identityId: null, methods: [] };
        return { ok: true, identityId, methods: await deps.methodsOf(identityId) };
      }),
      scoreRisk: fromPromise(({ input }) => requestRiskScore({ jobs: deps.jobs, config, clock }, input)),
      mfa: provideMfa({ db, clock, config, totp: deps.totp, recovery: deps.recovery, ports: deps.ports ?? {} }),
      /** The new password; every session (and with it every refresh family) ends before this answers. */
      setNewPassword: fromPromise(async ({ input }): Promise<NewPasswordResult> => {
        const who = await db.query<{ email: string }>('SELECT email FROM identities WHERE id = $1', [input.identityId]);
        try {
          await deps.policy.assertNewPassword({ password: input.password, identifier: who.rows[0]?.email ?? null, identityId: input.identityId });
        } catch (e) {
          if (isAppError(e) && e.status < 500) return { ok: false, code: e.code, message: e.detail ?? e.message };
          throw e;
        }
        // Also forgets every remembered device (src/auth/password.ts).
        await deps.passwords.setPassword(input.identityId, input.password);
        await deps.sessions.revokeAllFor(input.identityId, 'password_recovered');
        // The owner proved the link (and their factor): a timed lockout from guesses at the old
        // password ends with it; a lock without an end (an administrator's) stays.
        await db.query(
          `UPDATE identities SET failed_attempts = 0, mfa_failed_attempts = 0,
                  locked_at = CASE WHEN locked_until IS NOT NULL THEN NULL ELSE locked_at END, locked_until = NULL
            WHERE id = $1`,
          [input.identityId],
        );
        return { ok: true };
      }),
    },
  });

  const runtime = createFlowRuntime({
    db,
    clock,
    type: 'recovery',
    machine,
    machineVersion: RECOVERY_FLOW_VERSION,
    ttlSeconds: config.RECOVERY_TTL_SECONDS,
    leaseMs: Math.max(30_000, config.RISK_TIMEOUT_MS + 15_000),
    logger: deps.logger,
  });

  /** The account a link may be mailed for: active, with a verified address; null otherwise. */
  async function recoverable(where: 'email' | 'id', value: string): Promise<{ id: string; email: string } | null> {
    const { rows } = await db.query<{ id: string; email: string }>(
      `SELECT id, email FROM identities WHERE ${where === 'email' ? 'email' : 'id'} = $1 AND status = 'active' AND email_verified`,
      [value],
    );
    return rows[0] ?? null;
  }

  /** Creates the flow and its link; mails it when there is an account. The same work either way. */
  async function begin(target: { id: string; email: string } | null, by: 'user' | 'admin', meta: { deviceId: string | null; ip: string | null }) {
    const row = await runtime.create(
      { maxLinkAttempts: MAX_LINK_ATTEMPTS, maxMfaAttempts: config.MFA_MAX_ATTEMPTS, riskTimeoutMs: config.RISK_TIMEOUT_MS },
      { deviceId: meta.deviceId, ip: meta.ip, returnTokens: false },
    );
    const code = randomToken(24);
    const now = clock.now();
    const { rows } = await db.query<{ recent: boolean }>(
      `WITH recent AS (
         SELECT EXISTS (SELECT 1 FROM recovery_links WHERE identity_id = $2 AND created_at > $6 AND requested_by = 'user') AS recent)
       INSERT INTO recovery_links (flow_id, identity_id, token_hash, requested_by, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $7) RETURNING (SELECT recent FROM recent)`,
      [row.id, target?.id ?? null, digest(row.id, code), by, new Date(now), new Date(now - config.CODE_RESEND_COOLDOWN_SECONDS * 1000), new Date(now + config.RECOVERY_TTL_SECONDS * 1000)],
    );
    // One mail per cooldown for self-service requests: the endpoint cannot be used to flood a mailbox.
    const send = target !== null && (by === 'admin' || !rows[0]?.recent);
    const mail = send
      ? deps.sendLink({
          to: target.email,
          flowId: row.id,
          link: `${config.PUBLIC_URL.replace(/\/$/, '')}/auth/recovery/${row.id}#code=${code}`,
          code,
          ttlMinutes: String(Math.round(config.RECOVERY_TTL_SECONDS / 60)),
        })
      : Promise.resolve();
    return { row, sent: send, mail };
  }

  /** A recovery flow opens to anyone holding its link until the link is proven; then only to the device that proved it. */
  async function open(id: string, client: FlowClient): Promise<FlowRow> {
    const row = await runtime.load(id);
    if (row.snapshot.status === 'active' && row.snapshot.value === 'awaitingLink') return row;
    return loadBound(async () => row, id, client, (r, why) =>
      deps.audit.append({ type: 'flow.refused', subject: r.identity_id, reason: why, data: { flow: r.id, flowType: r.type, device: deviceRef(r.device_id), presentedDevice: deviceRef(client.deviceId) } }),
    );
  }

  function audits(flow: FlowRow, effects: RecoveryEffect[]): AuditEvent[] {
    const base = { flow: flow.id, flowType: 'recovery', device: deviceRef(flow.device_id) };
    return effects.flatMap((e): AuditEvent[] => {
      switch (e.type) {
        case 'recovery.link_failed':
          return [{ type: 'recovery.link_failed', subject: null, reason: 'RECOVERY_LINK_INVALID', data: { ...base, attempts: e.attempts } }];
        case 'recovery.risk_decided':
          return [{ type: 'risk.decided', subject: e.identityId, reason: e.risk.reasons.join(' ') || 'NONE', data: { ...base, decision: e.risk.decision, score: e.risk.score, policyVersion: e.risk.policyVersion, contributions: e.risk.contributions } }];
        case 'recovery.denied':
          return [{ type: 'recovery.denied', subject: e.identityId, reason: e.reason, data: base }];
        case 'recovery.locked':
          return [{ type: 'recovery.locked', subject: e.identityId, reason: e.reason, data: base }];
        case 'mfa.challenge_failed':
          return [{ type: 'mfa.challenge_failed', subject: e.identityId, reason: e.reason, data: { ...base, method: e.method, attempts: e.attempts } }];
        case 'mfa.locked':
          return [{ type: 'mfa.locked', subject: e.identityId, reason: 'MFA_LOCKED', data: { ...base, method: e.method } }];
        case 'mfa.code_sent':
          return [{ type: 'mfa.code_sent', subject: e.identityId, reason: e.channel.toUpperCase(), data: base }];
        default:
          return [];
      }
    });
  }

  return {
    runtime,
    open,
    /** Self-service request. Answers the same flow shape whether the identifier names an account or not. */
    async request(identifier: string, client: RecoveryClient): Promise<FlowRow> {
      const target = await recoverable('email', normalizeIdentifier(identifier));
      const { row, sent, mail } = await begin(target, 'user', { deviceId: client.deviceId, ip: client.ip });
      // Not awaited: the answer must not take longer when a mail is queued than when none is.
      mail.catch((err) => deps.logger?.warn({ err, flow: row.id }, 'recovery mail not queued'));
      await deps.audit.append({ type: 'recovery.requested', subject: target?.id ?? null, reason: 'USER', data: { flow: row.id, sent, device: deviceRef(client.deviceId) } });
      return row;
    },
    /** An administrator sends the user the same link (their sessions stay until the user acts). */
    async adminReset(actorId: string, identityId: string): Promise<{ flowId: string; expiresAt: string }> {
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(identityId)) throw new AppError('NOT_FOUND');
      const exists = await db.query('SELECT 1 FROM identities WHERE id = $1', [identityId]);
      if (!exists.rows[0]) throw new AppError('NOT_FOUND');
      const target = await recoverable('id', identityId);
      if (!target) throw new AppError('CONFLICT', { detail: 'The account is disabled or its address is not verified: no link can be sent.' });
      // Unbound: the user opens the link on their own device, which the link then binds.
      const { row, mail } = await begin(target, 'admin', { deviceId: null, ip: null });
      await mail;
      await deps.audit.append({ type: 'recovery.requested', actor: actorId, subject: identityId, reason: 'ADMIN', data: { flow: row.id, sent: true } });
      return { flowId: row.id, expiresAt: row.expires_at.toISOString() };
    },
    /** One event; the link event learns who presented it from the request, never from the body. */
    async submit(id: string, event: { type: string } & Record<string, unknown>, client: RecoveryClient): Promise<FlowRow> {
      const row = await open(id, client);
      const ev = event.type === 'link' ? { ...event, ip: client.ip, deviceId: client.deviceId, userAgent: client.userAgent?.slice(0, 1000) ?? null } : event;
      const { flow, effects, finished } = await runtime.advance<RecoveryEffect>(id, ev, row);
      const pending = audits(flow, effects);
      const out = flow.snapshot.output as RecoveryOutput | undefined;
      if (finished && out?.outcome === 'recovered' && out.identityId) {
        pending.push(
          { type: 'password.changed', actor: out.identityId, subject: out.identityId, reason: 'RECOVERY', data: { flow: flow.id } },
          { type: 'recovery.completed', actor: out.identityId, subject: out.identityId, reason: out.factors.join(' '), data: { flow: flow.id, device: deviceRef(flow.device_id) } },
        );
        await deps.audit.appendMany(pending);
        await deps.notifyUser?.(out.identityId, 'factor_changed', { factor: 'password', action: 'reset by account recovery', time: new Date(clock.now()).toISOString() }, `recovered-${flow.id}`);
        return flow;
      }
      await deps.audit.appendMany(pending);
      return flow;
    },
  };
}

export type RecoveryFlows = ReturnType<typeof createRecoveryFlows>;
