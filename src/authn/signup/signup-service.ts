import { randomUUID } from 'node:crypto';
import { fromPromise } from 'xstate';
import type { Audit } from '../../audit/audit.ts';
import type { CodeService } from '../methods/codes/codes.ts';
import type { PasswordService } from '../methods/password/password.ts';
import { normalizeIdentifier } from '../methods/password/password.ts';
import type { Clock } from '../../clock.ts';
import type { Config } from '../../config/config.ts';
import type { Db } from '../../db/db.ts';
import { isUniqueViolation } from '../../db/db.ts';
import { AppError, isAppError } from '../../errors.ts';
import type { Jobs } from '../../jobs/jobs.ts';
import type { Logger } from '../../logger.ts';
import type { NotifyClient } from '../../notify/enqueue.ts';
import { maskDestination } from '../../notify/mask.ts';
import { deviceRef, loadBound, type FlowClient } from '../../flows/binding.ts';
import { createFlowRuntime, type FlowRow } from '../../flows/runtime.ts';
import { notifyJobId, RISK_JOB, riskJobId } from '../../../workers/queues.ts';
import type { RiskOutcome } from '../../../machines/types.ts';
import { SIGNUP_MACHINE_VERSION, signupMachine, type RegisterInput, type RegisterResult, type SignupEffect, type SignupRisk } from '../../../machines/signup.machine.ts';
import { describe, type PasswordPolicy } from '../passwords/policy.ts';
import { domainAllowed, domainOf, isDisposable, parseDomains } from './email-domains.ts';

/**
 * Self-service sign-up (issue 12 items 1–2): the pure machine (machines/signup.machine.ts) with
 * its actors. A new address gets an unverified identity and a code; an address that already has
 * an account gets the same answer, a notice to its owner and a decoy code that is never sent (so
 * resends, cooldowns and guess budgets behave alike). Verifying the code sets email_verified.
 */
export function createSignupService(deps: {
  db: Db;
  clock: Clock;
  config: Config;
  logger: Logger;
  audit: Audit;
  jobs: Jobs;
  passwords: PasswordService;
  policy: PasswordPolicy;
  codes: CodeService;
  notify: NotifyClient;
}) {
  const { db, clock, config } = deps;
  const allowed = parseDomains(config.SIGNUP_ALLOWED_DOMAINS);
  const ttlMinutes = String(Math.round(config.CODE_TTL_SECONDS / 60));
  const signInUrl = `${config.PUBLIC_URL.replace(/\/$/, '')}/auth/login`;

  /** Scored by the risk worker like a login attempt (no account yet: IP, device and network signals). */
  async function score(i: RegisterInput): Promise<SignupRisk & { decision: RiskOutcome['decision'] }> {
    const r = await deps.jobs.request<RiskOutcome>(
      config.RISK_QUEUE,
      RISK_JOB,
      { identityId: null, deviceId: i.deviceId, ip: i.ip, at: clock.now(), userAgent: i.userAgent },
      { jobId: riskJobId(`sgn_${randomUUID().replace(/-/g, '')}`, 0), timeoutMs: config.RISK_TIMEOUT_MS },
    );
    if (!r || !['allow', 'step_up', 'deny'].includes(r.decision) || !Array.isArray(r.reasons)) throw new Error('malformed risk result');
    return { decision: r.decision, level: r.level, reasons: [...r.reasons] };
  }

  /** Sends and waits, so a new and an existing address cost the same: one delivered message each. */
  const mail = (to: string, template: 'email_verification' | 'signup_attempt', data: Record<string, string>, key: string) =>
    deps.notify.sendAndWait({ channel: 'email', to, template, data }, notifyJobId(template, key), 15_000);

  /**
   * At registration a failed delivery does not fail the step: the account exists (or the notice was
   * for its owner), the flow asks for the code and `resend` tries again — and a mail server that
   * refuses one address but not another cannot tell the client which addresses have accounts.
   */
  const mailOnce = (...a: Parameters<typeof mail>) =>
    mail(...a).catch((err: unknown) => {
      if (!isAppError(err) || err.code !== 'DELIVERY_FAILED') throw err;
      deps.logger.warn({ err: { message: err.message }, template: a[1] }, 'sign-up mail not delivered; the flow offers a resend');
    });

  async function register(i: RegisterInput): Promise<RegisterResult> {
    const email = normalizeIdentifier(i.email);
    const domain = domainOf(email);
    if (!domainAllowed(domain, allowed)) return { status: 'refused', error: 'EMAIL_DOMAIN_NOT_ALLOWED', text: 'Sign-up is not open to this email domain.' };
    if (isDisposable(domain)) return { status: 'refused', error: 'EMAIL_DISPOSABLE', text: 'Use a permanent email address, not a disposable one.' };
    const v = await deps.policy.checkNewPassword({ password: i.password, identifier: email, hasSecondFactor: false });
    if (!v.ok) return { status: 'refused', error: 'PASSWORD_REJECTED', text: describe(v.reasons, v.minLength), rejection: { reasons: v.reasons, minLength: v.minLength } };
    const risk = await score(i);
    const shown: SignupRisk = { level: risk.level, reasons: risk.reasons };
    if (risk.decision === 'deny') return { status: 'denied', risk: shown };
    // Hashed before the address is looked at: both outcomes pay for it.
    const hash = await deps.passwords.hash(i.password);
    const id = randomUUID();
    const now = new Date(clock.now());
    let created = true;
    try {
      await db.tx(async (q) => {
        await q.query('INSERT INTO identities (id, email, display_name, created_at) VALUES ($1, $2, $3, $4)', [id, email, i.displayName, now]);
        await q.query('INSERT INTO password_credentials (identity_id, hash, updated_at) VALUES ($1, $2, $3)', [id, hash, now]);
      });
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      created = false;
    }
    const base = { flow: i.flowId, device: deviceRef(i.deviceId), risk: shown.level };
    // The challenge exists either way; only a new account's code is sent.
    const issued = await deps.codes.issue({ flowId: i.flowId, identityId: created ? id : null, channel: 'email', destination: email });
    if (created) {
      await deps.audit.append({ type: 'user.created', actor: 'signup', subject: id, reason: 'SIGNUP', data: { ...base, roles: [] } });
      await mailOnce(email, 'email_verification', { code: issued.code, ttlMinutes }, `${issued.challengeId}-0`);
    } else {
      const owner = await db.query<{ id: string }>('SELECT id FROM identities WHERE email = $1', [email]);
      await deps.audit.append({ type: 'signup.requested', actor: 'signup', subject: owner.rows[0]?.id ?? null, reason: 'EXISTING_ACCOUNT', data: base });
      await mailOnce(email, 'signup_attempt', { time: now.toISOString(), signInUrl }, `${issued.challengeId}-0`);
    }
    return { status: 'accepted', challenge: { channel: 'email', to: maskDestination('email', email) }, identityId: created ? id : null, risk: shown };
  }

  const machine = signupMachine.provide({
    actors: {
      register: fromPromise(({ input }) => register(input)),
      // A decoy challenge (existing address) never verifies, whatever is typed.
      verifyCode: fromPromise(async ({ input }) => {
        const verdict = await deps.codes.verify(input.flowId, input.code);
        if (verdict !== 'ok') return verdict;
        if (!input.identityId) return 'invalid';
        await db.query('UPDATE identities SET email_verified = true WHERE id = $1', [input.identityId]);
        return 'ok';
      }),
      resendCode: fromPromise(async ({ input }) => {
        try {
          const issued = await deps.codes.resend(input.flowId, 'email');
          const { rows } = await db.query<{ sends: number }>('SELECT sends FROM otp_challenges WHERE id = $1', [issued.challengeId]);
          const key = `${issued.challengeId}-${rows[0]?.sends ?? 0}`;
          if (input.identityId) await mail(issued.destination, 'email_verification', { code: issued.code, ttlMinutes }, key);
          else await mail(issued.destination, 'signup_attempt', { time: new Date(clock.now()).toISOString(), signInUrl }, key);
          return { ok: true as const };
        } catch (e) {
          if (isAppError(e) && (e.code === 'CODE_RESEND_TOO_SOON' || e.code === 'DELIVERY_FAILED'))
            return { ok: false as const, error: e.code, retryAfter: (e.extra?.retryAfter as number | undefined) ?? undefined };
          throw e;
        }
      }),
    },
  });

  const runtime = createFlowRuntime({
    db,
    clock,
    type: 'signup',
    machine,
    machineVersion: SIGNUP_MACHINE_VERSION,
    ttlSeconds: config.FLOW_TTL_SECONDS,
    leaseMs: Math.max(30_000, config.RISK_TIMEOUT_MS + 20_000),
    logger: deps.logger,
  });

  /** Audit of what the machine reports (the register actor audits account creation itself). */
  async function apply(flow: FlowRow, effects: SignupEffect[]) {
    for (const e of effects) {
      if (e.type === 'email.verified' && e.identityId)
        await deps.audit.append({ type: 'email.verified', subject: e.identityId, reason: 'SIGNUP', data: { flow: flow.id } });
      else if (e.type === 'signup.denied')
        await deps.audit.append({ type: 'signup.denied', subject: null, reason: e.risk.reasons.join(' ') || 'RISK_DENIED', data: { flow: flow.id, device: deviceRef(flow.device_id) } });
    }
  }

  const open = (id: string, client: FlowClient) =>
    loadBound(runtime.load, id, { deviceId: client.deviceId }, (row, why) =>
      deps.audit.append({ type: 'flow.refused', subject: null, reason: why, data: { flow: row.id, flowType: row.type, device: deviceRef(row.device_id), presentedDevice: deviceRef(client.deviceId) } }),
    );

  return {
    runtime,
    open,
    enabled: config.SIGNUP_ENABLED === 'on',
    start(meta: { deviceId: string | null; ip: string; userAgent?: string | null }) {
      return runtime.create({ deviceId: meta.deviceId, ip: meta.ip, userAgent: meta.userAgent?.slice(0, 1000) ?? null }, { deviceId: meta.deviceId, ip: meta.ip, returnTokens: false });
    },
    async submit(id: string, event: { type: string }, client: FlowClient): Promise<FlowRow> {
      const row = await open(id, client);
      const advanced = await runtime.advance<SignupEffect>(id, event, row);
      await apply(advanced.flow, advanced.effects);
      return advanced.flow;
    },
  };
}

export type SignupService = ReturnType<typeof createSignupService>;

/** Sign-up is off unless SIGNUP_ENABLED=on: the routes answer 404 SIGNUP_DISABLED. */
export function assertSignupEnabled(s: { enabled: boolean }) {
  if (!s.enabled) throw new AppError('SIGNUP_DISABLED');
}
