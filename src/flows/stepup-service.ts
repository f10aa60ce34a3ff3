import type { Logger } from '../logger.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config/config.ts';
import type { Db } from '../db/db.ts';
import type { Audit } from '../audit/audit.ts';
import { metrics } from '../metrics/metrics.ts';
import type { TotpService } from '../authn/methods/totp/totp.ts';
import type { RecoveryService } from '../authn/methods/recovery/recovery.ts';
import type { SessionRecord, SessionService } from '../session/sessions.ts';
import type { TokenService } from '../tokens/access-token.ts';
import type { Principal, Rbac, Requirement } from '../rbac/rbac.ts';
import { AppError } from '../errors.ts';
import { MFA_MACHINE_VERSION, type MfaEffect, type MfaOutput } from '../../machines/mfa.machine.ts';
import { acrFor, combineAmr, publishAmr, type MfaMethod } from '../../machines/types.ts';
import { createFlowRuntime, type FlowRow } from './runtime.ts';
import { provideMfa, type SecondFactorPorts } from './mfa-actors.ts';
import { deviceRef, loadBound } from './binding.ts';
import { KEY_METHODS, NO_ASSURANCE_METHODS } from '../authn/methods/registry.ts';

export interface StepUpRequest {
  acrValues?: string;
  maxAge?: number;
  permission?: string;
}

export interface StepUpCompletion {
  sessionToken: string;
  session: SessionRecord;
  tokens?: { access_token: string; token_type: 'Bearer'; expires_in: number };
}

/**
 * Which of the user's methods can satisfy what was asked. Email codes are never offered: they
 * raise no assurance (NIST), so a step-up by email would only refresh the session's clock.
 */
export function methodsFor(enrolled: MfaMethod[], req: Requirement | null, _acrValues?: string): MfaMethod[] {
  const amr = req?.amr ?? [];
  if (amr.includes('hwk') || amr.includes('swk')) return enrolled.filter((m) => KEY_METHODS.has(m));
  return enrolled.filter((m) => !NO_ASSURANCE_METHODS.has(m));
}

/**
 * Step-up of a live session (RFC 9470): the MFA machine runs as its own flow, bound to the
 * session that started it; on success the session's amr, acr and factor times are raised and its
 * id rotated.
 */
export function createStepUpService(deps: {
  db: Db;
  clock: Clock;
  /** Flow transitions at debug level (src/flows/runtime.ts). */
  logger?: Pick<Logger, 'debug'>;
  config: Config;
  audit: Audit;
  totp: TotpService;
  recovery: RecoveryService;
  sessions: SessionService;
  tokens: TokenService;
  rbac: Rbac;
  methodsOf: (identityId: string) => Promise<MfaMethod[]>;
  roleNames: (identityId: string) => Promise<string[]>;
  ports?: SecondFactorPorts;
  /** Refresh-token families follow the session to its new id. */
  refresh?: { rebindSession(from: string, to: string, client?: { ip: string; deviceId: string | null }): Promise<unknown> };
}) {
  const { db, clock, config } = deps;
  const machine = provideMfa({ db, clock, config, totp: deps.totp, recovery: deps.recovery, ports: deps.ports ?? {} });
  const runtime = createFlowRuntime({ db, clock, type: 'stepup', machine, machineVersion: MFA_MACHINE_VERSION, ttlSeconds: config.FLOW_TTL_SECONDS, logger: deps.logger });

  /** Stops a flow id from being used by any session, or any device, but the one that started it (audited; answered as unknown). */
  function ownFlow(p: Principal, id: string, client: { deviceId: string | null }): Promise<FlowRow> {
    return loadBound(runtime.load, id, { deviceId: client.deviceId, sessionId: p.sessionId }, (row, why) =>
      deps.audit.append({ type: 'flow.refused', actor: p.identityId, subject: row.identity_id, reason: why, data: { flow: row.id, flowType: row.type, session: p.sessionId, device: deviceRef(row.device_id), presentedDevice: deviceRef(client.deviceId) } }),
    );
  }

  async function applyEffects(flow: FlowRow, effects: MfaEffect[]) {
    for (const e of effects) {
      const base = { flow: flow.id, session: flow.session_id };
      if (e.type === 'mfa.challenge_failed')
        await deps.audit.append({ type: 'mfa.challenge_failed', subject: flow.identity_id, reason: e.reason, data: { ...base, method: e.method, attempts: e.attempts } });
      else if (e.type === 'mfa.locked')
        await deps.audit.append({ type: 'mfa.locked', subject: flow.identity_id, reason: 'MFA_LOCKED', data: { ...base, method: e.method } });
      else if (e.type === 'mfa.code_sent')
        await deps.audit.append({ type: 'mfa.code_sent', subject: flow.identity_id, reason: e.channel.toUpperCase(), data: base });
    }
  }

  return {
    runtime,
    ownFlow,
    async start(p: Principal, req: StepUpRequest, meta: { deviceId: string | null; ip: string; returnTokens: boolean }) {
      let requirement: Requirement | null = null;
      if (req.permission) {
        const perms = await deps.rbac.permissionsOf(p.identityId);
        const perm = perms.find((x) => x.name === req.permission);
        if (!perm) throw new AppError('PERMISSION_DENIED');
        requirement = perm.requirement;
      }
      const methods = methodsFor(await deps.methodsOf(p.identityId), requirement, req.acrValues);
      if (!methods.length)
        throw new AppError('MFA_ENROLMENT_REQUIRED', { detail: 'Enrol a second factor (POST /auth/mfa/…) before stepping up.' });
      const row = await runtime.create(
        { identityId: p.identityId, methods, maxAttempts: config.MFA_MAX_ATTEMPTS, standalone: true },
        { deviceId: meta.deviceId, ip: meta.ip, returnTokens: meta.returnTokens, identityId: p.identityId, sessionId: p.sessionId },
      );
      metrics.stepUps.inc({ stage: 'started' });
      await deps.audit.append({ type: 'stepup.started', actor: p.identityId, subject: p.sessionId, reason: req.permission ?? req.acrValues ?? 'REQUESTED', data: { flow: row.id, methods } });
      return row;
    },
    async submit(p: Principal, id: string, event: { type: string }, client: { deviceId: string | null }): Promise<{ flow: FlowRow; completion?: StepUpCompletion }> {
      const row = await ownFlow(p, id, client);
      const { flow, effects, finished } = await runtime.advance<MfaEffect>(id, event, row);
      await applyEffects(flow, effects);
      if (!finished) return { flow };
      const out = flow.snapshot.output as MfaOutput;
      if (!out.ok) return { flow };
      const session = await deps.sessions.byId(p.sessionId);
      if (!session) throw new AppError('UNAUTHENTICATED');
      const now = Math.floor(clock.now() / 1000);
      const internal = combineAmr([...session.amr, ...out.amr]);
      const amr = publishAmr(internal);
      // Elevated assurance ages from the time of this factor, not of the login.
      const factorTimes: Record<string, number> = Object.fromEntries(out.amr.map((a) => [a, now]));
      // Fresh MFA only from a factor that counts: an email code never refreshes it.
      if (amr.includes('mfa') && out.amr.some((a) => a !== 'email')) factorTimes.mfa = now;
      const raised = await deps.sessions.elevate(session.id, { amr, acr: acrFor(amr), factorTimes });
      if (!raised) throw new AppError('UNAUTHENTICATED');
      await deps.refresh?.rebindSession(session.id, raised.session.id, { ip: flow.ip ?? '', deviceId: flow.device_id });
      await db.query('UPDATE flows SET session_id = $2 WHERE id = $1', [flow.id, raised.session.id]);
      metrics.stepUps.inc({ stage: 'completed' });
      await deps.audit.append({ type: 'session.stepped_up', actor: p.identityId, subject: raised.session.id, reason: out.method ?? 'MFA', data: { previous: session.id, amr, flow: flow.id } });
      const completion: StepUpCompletion = { sessionToken: raised.token, session: raised.session };
      if (flow.return_tokens) {
        const t = await deps.tokens.issue({
          sub: p.identityId,
          sid: raised.session.id,
          amr,
          acr: raised.session.acr,
          auth_time: raised.session.authTime,
          roles: await deps.roleNames(p.identityId),
        });
        completion.tokens = { access_token: t.token, token_type: 'Bearer', expires_in: t.expiresIn };
      }
      return { flow, completion };
    },
  };
}

export type StepUpService = ReturnType<typeof createStepUpService>;
