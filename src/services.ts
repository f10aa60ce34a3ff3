import type { Clock } from './clock.ts';
import type { Config } from './config/config.ts';
import type { Db } from './db/db.ts';
import type { Jobs } from './jobs/jobs.ts';
import type { Logger } from './logger.ts';
import { Sealer } from './crypto/seal.ts';
import { createAudit } from './audit/audit.ts';
import { createPasswordService } from './authn/methods/password/password.ts';
import { createTotpService } from './authn/methods/totp/totp.ts';
import { createRecoveryService } from './authn/methods/recovery/recovery.ts';
import { createSessionService } from './session/sessions.ts';
import { createKeyStore } from './tokens/keys.ts';
import { createTokenService } from './tokens/access-token.ts';
import { createRbac } from './rbac/rbac.ts';
import { createAuthorizer } from './authz/authorizer.ts';
import { defaultPipeline } from './principals/index.ts';
import { apiKeyAuthenticator } from './principals/api-key-authenticator.ts';
import { createApiKeyStore } from './credentials/api-keys/store.ts';
import { createApiKeyVerifier } from './credentials/api-keys/verifier.ts';
import { createUsageRecorder } from './credentials/api-keys/usage.ts';
import { createApiKeyService } from './credentials/api-keys/service.ts';
import { createRbacSnapshot, memoryVersionSource, redisVersionSource } from './rbac/snapshot.ts';
import { createUserService } from './identity/users.ts';
import { createLoginService } from './flows/login-service.ts';
import { createStepUpService } from './flows/stepup-service.ts';
import type { Services } from './http/services.ts';
import { createFactorRegistry } from './authn/methods/factors.ts';
import { createLoginReports } from './session/login-reports.ts';
import { createRememberedDevices } from './session/remembered-devices.ts';
import { createRecoveryFlows } from './flows/recovery-service.ts';
import { createRefreshService, type RefreshService } from './tokens/refresh.ts';
import { openGeo } from './risk/geo.ts';
import { createRiskApi } from './risk/risk-api.ts';
import { RISK_JOB, riskJobId } from '../workers/queues.ts';
import type { RiskOutcome } from '../machines/types.ts';
import { Redis } from 'ioredis';
import { createRevocationList } from './session/revocation.ts';
import { createVerifyCache } from './http/verify-cache.ts';
import { clearCacheOnRevocation } from './http/routes/verify.ts';
import { amrForWebAuthn, createWebAuthnService } from './authn/methods/webauthn/webauthn.ts';
import type { SecondFactorPorts } from './flows/mfa-actors.ts';
import { createPasskeyPort } from './authn/methods/passkey/passkey.ts';
import { createHmac, randomUUID } from 'node:crypto';
import { AppError } from './errors.ts';
import { createCodeService } from './authn/methods/codes/codes.ts';
import { createNotifyClient } from './notify/enqueue.ts';
import { notifyJobId } from '../workers/queues.ts';
import { maskDestination } from './notify/mask.ts';
import { passwordPolicyFromConfig } from './authn/passwords/policy.ts';
import { createCompromisedPasswords } from './authn/passwords/compromised.ts';
import { createSignupService } from './authn/signup/signup-service.ts';
import { createEmailVerification } from './authn/signup/email-verification.ts';
import { createFederation } from './authn/federation/federation.ts';
import { applyIdpConfigFile } from './authn/federation/config-file.ts';
import { createLoginLimiter, limiterRedis, limitSettings, loginLimiterOptions } from './security/limits.ts';
import { applyTrustedIssuersFile, createTrustedIssuers } from './authn/trusted-issuers/index.ts';
import { serviceTokenAuthenticator } from './authn/trusted-issuers/service-token-authenticator.ts';
import { createLoginEffects } from './flows/login-effects.ts';
import type { FlowRow } from './flows/runtime.ts';
import { createMachineClients } from './credentials/machine-clients/clients.ts';

/** Wires adapters into services. Tests call this with their own db, jobs and clock. */
export async function buildServices(d: { config: Config; db: Db; jobs: Jobs; clock: Clock; logger: Logger; masterKey: Buffer }): Promise<Services> {
  const { config, db, jobs, clock, logger } = d;
  const sealer = new Sealer(d.masterKey);
  const audit = createAudit(db, clock);
  const totp = createTotpService({ db, clock, sealer, issuer: 'Threshold' });
  // A separate key for recovery-code digests, derived from the master key.
  const recovery = createRecoveryService({ db, clock, pepper: createHmac('sha256', d.masterKey).update('recovery-codes').digest() });
  const factors = createFactorRegistry({ db, clock });
  const methodsOf = factors.methodsOf;
  const passwords = await createPasswordService({
    db,
    clock,
    concurrency: config.PASSWORD_HASH_CONCURRENCY,
    lockoutThreshold: config.LOCKOUT_THRESHOLD,
    lockoutSeconds: config.LOCKOUT_SECONDS,
    methodsOf,
  });
  // Revocation must reach every process at once: a Redis deny-list (Postgres as the durable
  // fallback) that also clears each process's cache of verified credentials.
  const redis = config.REDIS_URL ? new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1 }) : null;
  redis?.on('error', () => {});
  const revocations = createRevocationList({
    db,
    redis,
    clock,
    // Locks live in their own column: the durable answer counts them too.
    durable: async (sid) => {
      const { rows } = await db.query<{ dead: boolean }>("SELECT (revoked_at IS NOT NULL OR state = 'locked') AS dead FROM sessions WHERE id = $1", [sid]);
      return rows[0]?.dead ?? true;
    },
    onError: (err, op) => logger.warn({ err, op }, 'revocation list'),
  });
  const verifyCache = createVerifyCache({ clock });
  clearCacheOnRevocation(revocations, verifyCache);
  const tokenTtlMs = config.ACCESS_TOKEN_TTL_SECONDS * 1000;
  const refreshRef: { current?: RefreshService } = {};
  const sessions = createSessionService({
    db,
    clock,
    // Deny until the session could have ended anyway, and at least as long as a token lives.
    onRevoked: async (ids, untilMs) => {
      for (const id of ids) await revocations.revoke(id, Math.max(untilMs, clock.now() + tokenTtlMs));
    },
    onRestored: (id) => revocations.restore(id),
    // A refresh-token family dies with its session (late-bound: refresh needs sessions).
    onEnded: async (ids, reason) => {
      for (const id of ids) await refreshRef.current?.revokeSession(id, reason);
    },
    idleSeconds: config.SESSION_IDLE_SECONDS,
    absoluteSeconds: config.SESSION_ABSOLUTE_SECONDS,
    warningSeconds: config.SESSION_WARNING_SECONDS,
    maxPerUser: config.SESSION_MAX_PER_USER,
    capPolicy: config.SESSION_CAP_POLICY,
  });
  const keys = createKeyStore(db, sealer, clock);
  const tokens = createTokenService(keys, clock, {
    issuer: config.PUBLIC_URL,
    audience: config.TOKEN_AUDIENCE ?? config.PUBLIC_URL,
    ttlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
    emailVerifiedOf: async (sub) => (await db.query<{ v: boolean }>('SELECT email_verified AS v FROM identities WHERE id = $1', [sub])).rows[0]?.v ?? null,
  });
  // Authorization from memory; a change in any process is seen by every process's next check.
  const rbac = createRbac(db, clock, createRbacSnapshot({ db, clock, source: redis ? redisVersionSource(redis) : memoryVersionSource() }));
  const users = createUserService({ db, clock, passwords });
  // New passwords (every path that sets one) and breached ones proven at sign-in.
  const passwordPolicy = passwordPolicyFromConfig(config, logger, methodsOf);
  const compromised = createCompromisedPasswords({ db, audit, policy: passwordPolicy, enabled: config.PASSWORD_BREACH_CHECK_AT_LOGIN === 'on', logger });
  const authz = createAuthorizer({ snapshot: rbac.snapshot, clock, audit, logger, flushMs: config.AUTHZ_AUDIT_FLUSH_SECONDS * 1000 });
  const webauthn = createWebAuthnService({ db, clock, audit, rpID: config.webauthn.rpID, rpName: config.webauthn.rpName, origins: config.webauthn.origins });
  const codes = createCodeService({
    db,
    clock,
    pepper: createHmac('sha256', d.masterKey).update('one-time-codes').digest(),
    ttlSeconds: config.CODE_TTL_SECONDS,
    resendCooldownSeconds: config.CODE_RESEND_COOLDOWN_SECONDS,
    maxAttempts: config.MFA_MAX_ATTEMPTS,
  });
  // Through Redis (BullMQ), notify payloads (codes, recovery links) travel sealed under the master key.
  const notify = createNotifyClient(jobs, config.NOTIFY_QUEUE, undefined, config.REDIS_URL ? (p, aad) => sealer.seal(p, aad) : undefined);
  /** Email a code or a notice; codes wait for the provider so a failure reaches the user at once. */
  const sendCode = async (o: { flowKey: string; identityId: string; channel: 'sms' | 'email'; destination?: string; resend: boolean }) => {
    const destination = o.destination ?? (await factors.destination(o.identityId, o.channel));
    if (!destination) throw new AppError('MFA_FACTOR_NOT_FOUND');
    const issued = o.resend ? await codes.resend(o.flowKey, o.channel) : await codes.issue({ flowId: o.flowKey, identityId: o.identityId, channel: o.channel, destination });
    await notify.sendAndWait(
      { channel: o.channel, to: issued.destination, template: 'login_code', data: { code: issued.code, ttlMinutes: String(Math.round(config.CODE_TTL_SECONDS / 60)) } },
      notifyJobId('login_code', issued.challengeId, issued.expiresAt),
      15_000,
    );
    return { to: maskDestination(o.channel, issued.destination) };
  };
  const notifyUser = async (identityId: string, template: 'factor_changed' | 'new_device', data: Record<string, string>, key: string = randomUUID()) => {
    const user = await users.get(identityId);
    if (!user) return;
    await notify.send({ channel: 'email', to: user.email, template, data }, notifyJobId(template, key));
  };
  const ports: SecondFactorPorts = {
    sendCode: (i) => sendCode({ flowKey: i.flowId, identityId: i.identityId, channel: i.channel, resend: i.resend }),
    verifyCode: (flowId, code) => codes.verify(flowId, code),
    startWebAuthn: async (flowId, identityId) =>
      (await webauthn.authenticationOptions({ flowKey: flowId, identityId, userVerification: 'preferred' })) as unknown as Record<string, unknown>,
    async verifyWebAuthn(flowId, identityId, response) {
      const r = await webauthn.authenticate({ flowKey: flowId, identityId, response: response as never });
      return r.ok ? { ok: true, amr: amrForWebAuthn(r) } : { ok: false, amr: [], reason: r.reason };
    },
  };
  const passkey = createPasskeyPort({ webauthn, users, methodsOf });
  const geo = await openGeo(config.GEOIP_DB);
  const risk = createRiskApi({ db, clock, audit, geo, config, logger });
  const refresh = createRefreshService({
    db,
    clock,
    audit,
    sessions,
    tokens,
    geo,
    ttlSeconds: config.REFRESH_TOKEN_TTL_SECONDS,
    reuseGraceSeconds: config.REFRESH_REUSE_GRACE_SECONDS,
    roleNames: rbac.rolesOf,
    // A refresh from another network or country is re-scored by the risk worker.
    rescore: async (o) =>
      (
        await jobs.request<RiskOutcome>(
          config.RISK_QUEUE,
          RISK_JOB,
          { identityId: o.identityId, deviceId: o.deviceId, ip: o.ip, at: clock.now() },
          { jobId: riskJobId(`rfr_${randomUUID().replace(/-/g, '')}`, 0), timeoutMs: config.RISK_TIMEOUT_MS },
        )
      ).decision,
    rescoreTimeoutMs: config.RISK_TIMEOUT_MS,
    onReuse: async (o) => notifyUser(o.identityId, 'factor_changed', { factor: 'session', action: 'locked because a used refresh token was presented again' }, `reuse-${o.familyId}`),
  });
  refreshRef.current = refresh;
  const remembered = createRememberedDevices({ db, clock, audit, key: createHmac('sha256', d.masterKey).update('remembered-devices').digest() });
  const reports = createLoginReports({ db, clock, audit, sessions, remembered });
  const notice = { create: reports.create, send: (id: string, data: Record<string, string>, key: string) => notifyUser(id, 'new_device', data, key) };
  const federation = createFederation({
    db,
    clock,
    sealer,
    audit,
    publicUrl: config.PUBLIC_URL,
    production: config.NODE_ENV === 'production',
    flowTtlSeconds: config.FLOW_TTL_SECONDS,
    methodsOf,
    rolesChanged: () => rbac.changed(),
    lockoutThreshold: config.LOCKOUT_THRESHOLD,
    lockoutSeconds: config.LOCKOUT_SECONDS,
  });
  // Declared providers (a deployment's file) are in place before the first login.
  if (config.IDP_CONFIG_FILE) {
    const applied = await applyIdpConfigFile(config.IDP_CONFIG_FILE, { db, audit, providers: federation.providers, organisations: federation.organisations });
    logger.info(applied, 'identity providers from IDP_CONFIG_FILE');
  }
  const login = createLoginService({ db, clock, logger, config, audit, jobs, passwords, totp, recovery, sessions, tokens, roleNames: rbac.rolesOf, ports, passkey, notice, refresh, risk: risk.recorder, compromised, remembered, federation });
  const emailVerification = createEmailVerification({ db, audit, codes, notify, ttlMinutes: String(Math.round(config.CODE_TTL_SECONDS / 60)) });
  const signup = createSignupService({ db, clock, config, logger, audit, jobs, passwords, policy: passwordPolicy, codes, notify });
  const stepup = createStepUpService({ db, clock, logger, config, audit, totp, recovery, sessions, tokens, rbac, methodsOf, roleNames: rbac.rolesOf, ports, refresh });
  // Trusted token issuers: RFC 8693 exchange, the okta/sid schemes, workload tokens.
  const loginEvents = createLoginEffects({ db, clock, audit, risk: risk.recorder });
  const trusted = createTrustedIssuers({
    db,
    clock,
    config,
    audit,
    logger,
    sessions,
    tokens,
    refresh,
    roleNames: rbac.rolesOf,
    score: async (o) => {
      const r = await jobs.request<RiskOutcome>(
        config.RISK_QUEUE,
        RISK_JOB,
        { identityId: o.identityId, deviceId: o.deviceId, ip: o.ip, at: clock.now(), userAgent: o.userAgent },
        { jobId: riskJobId(o.key, 0), timeoutMs: config.RISK_TIMEOUT_MS },
      );
      if (!r || !['allow', 'step_up', 'deny'].includes(r.decision) || !Array.isArray(r.reasons)) throw new Error('malformed risk result');
      return r;
    },
    // A login event like an interactive login's (risk history, explanations); its "flow" is the exchange's key.
    recordLogin: (o) =>
      loginEvents.loginEvent(
        { id: o.key, device_id: o.ctx.deviceId, ip: o.ctx.ip, snapshot: { context: { userAgent: o.ctx.userAgent } } } as unknown as FlowRow,
        o.outcome,
        o.identityId,
        o.risk,
        { factors: ['fed'], ...(o.reason ? { reason: o.reason } : {}), ...(o.sessionId ? { sessionId: o.sessionId } : {}) },
      ),
  });
  await applyTrustedIssuersFile(trusted, config, audit, logger);
  // client_credentials secrets: HMAC under their own key derived from the master key (clients.ts says why not argon2id).
  const machineClients = createMachineClients({ db, clock, pepper: createHmac('sha256', d.masterKey).update('machine-client-secrets').digest() });
  const recoveryFlows = createRecoveryFlows({
    db, clock, logger, config, audit, jobs, passwords, totp, recovery, sessions, methodsOf, ports, notifyUser, policy: passwordPolicy,
    key: createHmac('sha256', d.masterKey).update('recovery-links').digest(),
    sendLink: (o) => notify.send({ channel: 'email', to: o.to, template: 'recovery_link', data: { link: o.link, code: o.code, ttlMinutes: o.ttlMinutes } }, notifyJobId('recovery_link', o.flowId)),
  });
  // Brute-force limits: Redis shared by all API processes, memory in the embedded default.
  const limitRedis = config.REDIS_URL ? limiterRedis(config.REDIS_URL) : null;
  const limitHashKey = createHmac('sha256', d.masterKey).update('rate-limit-keys').digest();
  const limits = {
    login: createLoginLimiter({ redis: limitRedis, hashKey: limitHashKey, ...loginLimiterOptions(limitSettings(config)) }),
    redis: limitRedis,
    hashKey: limitHashKey,
  };
  // The sign-in and account pages' form tokens (src/pages/security.ts): one key for every API process.
  const pageCsrfKey = createHmac('sha256', d.masterKey).update('page-csrf').digest();
  const principals = defaultPipeline({ config, sessions, tokens, users, revocations, verifyCache });
  // API keys: revocation and rotation bump a version every process reads per request (as RBAC does).
  const apiKeyStore = createApiKeyStore(db);
  const apiKeyVersion = redis ? redisVersionSource(redis, 'threshold:apikeys:version') : memoryVersionSource();
  const apiKeyVerifier = createApiKeyVerifier({
    store: apiKeyStore,
    clock,
    audit,
    logger,
    version: apiKeyVersion,
    redis: limitRedis,
    hashKey: limitHashKey,
    defaultRatePerMinute: config.API_KEY_RATE_LIMIT_PER_MINUTE,
    failuresPerIp: config.API_KEY_FAILURES_PER_IP,
    failureWindowSeconds: config.API_KEY_FAILURE_WINDOW_SECONDS,
    cacheMs: config.API_KEY_CACHE_SECONDS * 1000,
    storeTimeoutMs: config.RATE_LIMIT_STORE_TIMEOUT_MS,
  });
  const apiKeyUsage = createUsageRecorder({ store: apiKeyStore, clock, logger, flushMs: config.API_KEY_USAGE_FLUSH_SECONDS * 1000 });
  const apiKeys = createApiKeyService({ store: apiKeyStore, clock, audit, rbac: rbac.snapshot, version: apiKeyVersion, verifier: apiKeyVerifier, usage: apiKeyUsage });
  principals.register(apiKeyAuthenticator({ verifier: apiKeyVerifier, usage: apiKeyUsage }));
  // Workload (service-account) tokens and machine clients' client_credentials tokens.
  principals.register(serviceTokenAuthenticator({ workloads: trusted.workloads, tokens, issuer: config.PUBLIC_URL, logger, now: () => clock.now() }), { after: 'api_key' });
  const close = async () => {
    await authz.close();
    await apiKeyUsage.close();
    await revocations.close();
    await limits.login.close();
    redis?.disconnect();
  };
  return { config, db, clock, logger, audit, jobs, passwords, totp, recovery, sessions, tokens, keys, rbac, principals, authz, apiKeys, users, login, stepup, factors, webauthn, codes, sendCode, notifyUser, reports, revocations, verifyCache, limits, refresh, risk, trusted, machineClients, passwordPolicy, compromised, signup, emailVerification, remembered, recoveryFlows, pageCsrfKey, federation, close };
}
