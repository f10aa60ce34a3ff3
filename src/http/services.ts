import type { Clock } from '../clock.ts';
import type { Config } from '../config/config.ts';
import type { Db } from '../db/db.ts';
import type { Logger } from '../logger.ts';
import type { Audit } from '../audit/audit.ts';
import type { Jobs } from '../jobs/jobs.ts';
import type { PasswordService } from '../authn/methods/password/password.ts';
import type { TotpService } from '../authn/methods/totp/totp.ts';
import type { RecoveryService } from '../authn/methods/recovery/recovery.ts';
import type { SessionService } from '../session/sessions.ts';
import type { TokenService } from '../tokens/access-token.ts';
import type { KeyStore } from '../tokens/keys.ts';
import type { Rbac } from '../rbac/rbac.ts';
import type { AnyPrincipal } from '../principals/types.ts';
import type { PrincipalPipeline } from '../principals/pipeline.ts';
import type { Authorizer } from '../authz/authorizer.ts';
import type { ApiKeyService } from '../credentials/api-keys/service.ts';
import type { UserService } from '../identity/users.ts';
import type { LoginService } from '../flows/login-service.ts';
import type { StepUpService } from '../flows/stepup-service.ts';
import type { FactorRegistry } from '../authn/methods/factors.ts';
import type { WebAuthnService } from '../authn/methods/webauthn/webauthn.ts';
import type { CodeService } from '../authn/methods/codes/codes.ts';
import type { LoginReports } from '../session/login-reports.ts';
import type { LoginAttemptOutcome } from './middleware/rate-limit.ts';
import type { RevocationList } from '../session/revocation.ts';
import type { VerifyCache } from './verify-cache.ts';
import type { Redis } from 'ioredis';
import type { LoginLimiter } from '../security/limits.ts';
import type { RefreshService } from '../tokens/refresh.ts';
import type { RiskApi } from '../risk/risk-api.ts';
import type { TrustedIssuerServices } from '../authn/trusted-issuers/index.ts';
import type { KnownUser } from '../authn/trusted-issuers/known-user.ts';
import type { MachineClients } from '../credentials/machine-clients/clients.ts';
import type { PasswordPolicy } from '../authn/passwords/policy.ts';
import type { CompromisedPasswords } from '../authn/passwords/compromised.ts';
import type { SignupService } from '../authn/signup/signup-service.ts';
import type { EmailVerification } from '../authn/signup/email-verification.ts';
import type { RememberedDevices } from '../session/remembered-devices.ts';
import type { RecoveryFlows } from '../flows/recovery-service.ts';

/** Everything the HTTP layer may call; built once by the composition root. */
export interface Services {
  config: Config;
  db: Db;
  clock: Clock;
  logger: Logger;
  audit: Audit;
  jobs: Jobs;
  passwords: PasswordService;
  totp: TotpService;
  recovery: RecoveryService;
  sessions: SessionService;
  tokens: TokenService;
  keys: KeyStore;
  rbac: Rbac;
  /** Who is calling: the ordered list of authenticators (src/principals/). */
  principals: PrincipalPipeline;
  /** Authorization of any principal, audited (src/authz/authorizer.ts). */
  authz: Authorizer;
  /** API keys: creation, rotation, revocation, usage (src/credentials/api-keys/). */
  apiKeys: ApiKeyService;
  users: UserService;
  login: LoginService;
  stepup: StepUpService;
  factors: FactorRegistry;
  webauthn: WebAuthnService;
  codes: CodeService;
  reports: LoginReports;
  revocations: RevocationList;
  verifyCache: VerifyCache;
  /** Brute-force limits; `redis` is the limiter's own connection (null in the embedded default). */
  limits: { login: LoginLimiter; redis: Redis | null; hashKey: Buffer };
  refresh: RefreshService;
  /** Risk policies, events, labels and simulation for /api/risk. */
  risk: RiskApi;
  /** Trusted token issuers: token exchange, the okta/sid schemes, workload tokens. */
  trusted: TrustedIssuerServices;
  /** Registered machine clients (OAuth client_credentials). */
  machineClients: MachineClients;
  /** The rule every new password meets: call assertNewPassword on every path that sets one. */
  passwordPolicy: PasswordPolicy;
  /** Breached passwords proven at sign-in: the flag that asks for a change. */
  compromised: CompromisedPasswords;
  /** Self-service sign-up and email verification (off unless SIGNUP_ENABLED=on). */
  signup: SignupService;
  /** A signed-in user proving their address (accounts that did not sign up themselves). */
  emailVerification: EmailVerification;
  /** Devices remembered after a passed step-up (GET/DELETE /auth/devices). */
  remembered: RememberedDevices;
  /** Account recovery flows (POST /auth/recovery, admin reset). */
  recoveryFlows: RecoveryFlows;
  /** Key of the pages' form tokens (src/pages/security.ts), derived from the master key. */
  pageCsrfKey: Buffer;
  /** Release connections owned by the services (not the db or jobs passed in). */
  close: () => Promise<void>;
  /** Issue (or resend) a one-time code for a flow or a binding and deliver it; answers the masked destination. */
  sendCode: (o: { flowKey: string; identityId: string; channel: 'sms' | 'email'; destination?: string; resend: boolean }) => Promise<{ to: string }>;
  /** Tell the user by email about a change to their account (through the notify queue). */
  notifyUser?: (identityId: string, template: 'factor_changed' | 'new_device', data: Record<string, string>, key?: string) => Promise<void>;
}

export type Env = {
  Variables: {
    requestId: string;
    clientIp: string;
    principal?: AnyPrincipal;
    /** Set by demandKnownUser (the okta/sid schemes). */
    knownUser?: KnownUser;
    via?: AnyPrincipal['via'];
    /** Set by the login route for a password event: whether the password was right (the limiter reads it). */
    loginOutcome?: LoginAttemptOutcome;
    /** Told the final status once the route answered (API-key usage counts only uses that were not refused). */
    settle?: (status: number) => void;
  };
};
