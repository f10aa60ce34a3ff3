import { availableParallelism } from 'node:os';
import { z } from 'zod';

const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(def);

const url = z.string().url();

/** One schema for every setting; loaded once at boot. An error names the variable. */
export const ConfigSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  DATABASE_URL: url.optional(),
  REDIS_URL: url.optional(),
  PORT: int(3000, 0, 65535),
  HOST: z.string().min(1).default('127.0.0.1'),
  /** Token issuer, WebAuthn origin, links in mail; defaults to http://localhost:$PORT. */
  PUBLIC_URL: url.optional(),
  DATA_DIR: z.string().min(1).default('./data'),
  /** CIDRs (comma separated) or the word `loopback`: only these may set X-Forwarded-For. */
  TRUSTED_PROXIES: z.string().default(''),
  /** 32 bytes, base64 or hex: seals TOTP seeds and signing keys (AES-256-GCM). */
  THRESHOLD_MASTER_KEY: z
    .string()
    .optional()
    .refine((v) => v === undefined || decodeKey(v) !== null, 'must be 32 bytes as base64 or 64 hex digits'),
  THRESHOLD_ADMIN_EMAIL: z.string().email().optional(),
  THRESHOLD_ADMIN_PASSWORD: z.string().min(8).max(256).optional(),
  SESSION_IDLE_SECONDS: int(30 * 60, 60),
  SESSION_ABSOLUTE_SECONDS: int(12 * 3600, 60),
  /** Warn this long before a session's idle or absolute expiry (GET /auth/me says warning). */
  SESSION_WARNING_SECONDS: int(300, 0),
  /** Live sessions per user; 0 = no cap. At the cap: evict the oldest, or refuse the new one. */
  SESSION_MAX_PER_USER: int(10, 0, 1000),
  SESSION_CAP_POLICY: z.enum(['evict_oldest', 'refuse']).default('evict_oldest'),
  ACCESS_TOKEN_TTL_SECONDS: int(600, 30, 86400),
  /** Refresh tokens: lifetime (never past the session's absolute expiry); reuse grace, off by default (RFC 9700). */
  REFRESH_TOKEN_TTL_SECONDS: int(86400, 60),
  REFRESH_REUSE_GRACE_SECONDS: int(0, 0, 300),
  /** `aud` of access tokens (the resource servers'); defaults to PUBLIC_URL. */
  TOKEN_AUDIENCE: z.string().min(1).optional(),
  /** Trusted token issuers (token exchange, okta scheme, workload tokens) applied at start: a JSON array. */
  TRUSTED_ISSUERS_FILE: z.string().default(''),
  /** How long an issuer's JWKS is kept; the least time between refreshes an unknown `kid` may cause. */
  TRUSTED_ISSUER_JWKS_TTL_SECONDS: int(600, 10, 86400),
  TRUSTED_ISSUER_JWKS_REFRESH_FLOOR_SECONDS: int(30, 1, 3600),
  /** Token exchanges are risk-scored like logins (the risk worker): `step_up`/`deny` refuse unless the IdP proved trusted MFA. */
  TOKEN_EXCHANGE_RISK: z.enum(['on', 'off']).default('on'),
  FLOW_TTL_SECONDS: int(15 * 60, 30, 86400),
  /** Days a device may be remembered after a passed step-up (policy bands may cap it); 0 = never. */
  REMEMBER_DEVICE_DAYS: int(30, 0, 400),
  /** Lifetime of an account-recovery link (and of its flow). */
  RECOVERY_TTL_SECONDS: int(30 * 60, 60, 86400),
  RISK_TIMEOUT_MS: int(2000, 50, 60000),
  RISK_QUEUE: z.string().regex(/^[A-Za-z0-9_-]+$/).default('risk'),
  RISK_MAX_TRAVEL_KMH: int(900, 1),
  RISK_DENY_CIDRS: z.string().default(''),
  RISK_FAILURE_WINDOW_SECONDS: int(3600, 1),
  // Reputation lists, one address or CIDR a line; re-read when the file changes (no restart).
  RISK_TOR_EXITS_FILE: z.string().default(''),
  RISK_DENY_CIDRS_FILE: z.string().default(''),
  RISK_ALLOW_CIDRS_FILE: z.string().default(''),
  /** How often those files are stat()ed for changes. */
  RISK_LIST_CHECK_MS: int(1000, 0, 3_600_000),
  GEOIP_DB: z.string().optional(),
  /** Queue of back-test jobs (POST /api/risk/backtests). */
  BACKTEST_QUEUE: z.string().regex(/^[A-Za-z0-9_-]+$/).default('backtest'),
  /** Largest JSONL upload a back-test job accepts, in bytes. */
  BACKTEST_MAX_UPLOAD_BYTES: int(8 * 1024 * 1024, 1024, 64 * 1024 * 1024),
  /** Consecutive password failures before the account locks (NIST: at most 100). */
  LOCKOUT_THRESHOLD: int(10, 1, 100),
  /** How long a lock lasts; 0 means only an administrator unlocks. */
  LOCKOUT_SECONDS: int(15 * 60, 0),
  MFA_MAX_ATTEMPTS: int(5, 1, 20),
  /** Brute-force limits: failed password attempts per window, per client IP, per account, per IP+account. */
  RATE_LIMIT_IP_FAILURES: int(100, 1),
  RATE_LIMIT_IP_WINDOW_SECONDS: int(900, 1),
  RATE_LIMIT_ACCOUNT_FAILURES: int(50, 1),
  RATE_LIMIT_ACCOUNT_WINDOW_SECONDS: int(900, 1),
  RATE_LIMIT_IP_ACCOUNT_FAILURES: int(10, 1),
  RATE_LIMIT_IP_ACCOUNT_WINDOW_SECONDS: int(900, 1),
  /** Progressive delay: after this many consecutive IP+account failures, wait base·2^n ms, capped. */
  RATE_LIMIT_DELAY_AFTER_FAILURES: int(3, 0),
  RATE_LIMIT_DELAY_BASE_MS: int(250, 0, 60_000),
  RATE_LIMIT_DELAY_MAX_MS: int(8000, 0, 60_000),
  /** Login flows (POST /auth/login) one client IP may start per minute. */
  RATE_LIMIT_FLOW_STARTS_PER_MINUTE: int(60, 1),
  /** A limiter store call slower than this counts as the store being down: 503, never unlimited. */
  RATE_LIMIT_STORE_TIMEOUT_MS: int(1000, 50, 10_000),
  /** argon2id hashes at once; more than the cores only adds latency (measured: npm run bench). */
  PASSWORD_HASH_CONCURRENCY: int(Math.max(1, Math.min(4, availableParallelism())), 1, 64),
  /** New passwords (NIST SP 800-63B): shortest with a second factor, and when the password is the only factor (63B-4: 15). */
  PASSWORD_MIN_LENGTH: int(8, 8, 64),
  PASSWORD_MIN_LENGTH_SINGLE_FACTOR: int(15, 8, 64),
  /** A k-anonymity range API compatible with Have I Been Pwned's (e.g. https://api.pwnedpasswords.com); off when unset. */
  PWNED_PASSWORDS_URL: url.optional(),
  /** Past this the range API counts as unreachable and the check fails open (logged). */
  PWNED_PASSWORDS_TIMEOUT_MS: int(1500, 50, 10_000),
  /** At sign-in, a proven password found breached flags the account: the session says a change is required. */
  PASSWORD_BREACH_CHECK_AT_LOGIN: z.enum(['on', 'off']).default('on'),
  /** Self-service sign-up (POST /auth/signup); off by default (the routes answer 404 SIGNUP_DISABLED). */
  SIGNUP_ENABLED: z.enum(['on', 'off']).default('off'),
  /** Domains sign-up is open to, comma separated (`.example.com` = its subdomains too); empty = any. */
  SIGNUP_ALLOWED_DOMAINS: z.string().default(''),
  /** Sign-up flows one client IP may start per hour (a flow registers at most one address). */
  RATE_LIMIT_SIGNUPS_PER_HOUR: int(20, 1),
  /** WebAuthn relying party: rpID defaults to PUBLIC_URL's host, origins to PUBLIC_URL's origin. */
  WEBAUTHN_RP_ID: z.string().min(1).optional(),
  WEBAUTHN_RP_NAME: z.string().min(1).default('Threshold'),
  WEBAUTHN_ORIGINS: z.string().optional(),
  /** Origins of applications the sign-in pages may send a person back to (`return_to`), besides PUBLIC_URL's and WEBAUTHN_ORIGINS. */
  RETURN_TO_ORIGINS: z.string().optional(),
  /** Email: an smtp(s):// URL; without one, messages go to the dev mailbox (embedded default only). */
  SMTP_URL: z.string().regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL').optional(),
  MAIL_FROM: z.string().min(3).default('Threshold <no-reply@threshold.local>'),
  /** SMS: `dev` (dev mailbox), `twilio` (Twilio-compatible HTTP API) or `webhook` (JSON POST). */
  SMS_PROVIDER: z.enum(['dev', 'twilio', 'webhook']).default('dev'),
  SMS_TWILIO_BASE_URL: url.default('https://api.twilio.com'),
  SMS_TWILIO_ACCOUNT_SID: z.string().optional(),
  SMS_TWILIO_AUTH_TOKEN: z.string().optional(),
  SMS_TWILIO_FROM: z.string().optional(),
  SMS_WEBHOOK_URL: url.optional(),
  SMS_WEBHOOK_SECRET: z.string().optional(),
  /** One-time SMS/email codes: lifetime (≤ 10 min), resend cooldown. */
  CODE_TTL_SECONDS: int(600, 60, 600),
  CODE_RESEND_COOLDOWN_SECONDS: int(30, 0, 600),
  NOTIFY_QUEUE: z.string().regex(/^[A-Za-z0-9_-]+$/).default('notify'),
  /** The dev mailbox (GET /dev/mailbox); on by default only in the embedded default. */
  DEV_MAILBOX: z.enum(['on', 'off']).optional(),
  /** API keys: requests per minute of a key without its own limit; wrong keys one address may try per window; how often usage counts are written; how long a verified key is held (revocation is immediate regardless). */
  API_KEY_RATE_LIMIT_PER_MINUTE: int(600, 1, 1_000_000),
  API_KEY_FAILURES_PER_IP: int(20, 1, 100_000),
  API_KEY_FAILURE_WINDOW_SECONDS: int(300, 1, 86_400),
  API_KEY_USAGE_FLUSH_SECONDS: int(10, 1, 3600),
  API_KEY_CACHE_SECONDS: int(30, 1, 3600),
  /** Granted authorizations are counted in memory and written to the audit chain this often (one event per identity, permission, namespace). */
  AUTHZ_AUDIT_FLUSH_SECONDS: int(60, 1, 3600),
  /** The worker process's probes (/health/live, /health/ready) listen here on HOST; 0 = none. */
  WORKER_HEALTH_PORT: int(0, 0, 65535),
  /** Bearer token for GET /metrics (Prometheus); unset = no metrics endpoint. */
  METRICS_TOKEN: z.string().min(32, 'at least 32 characters').max(256).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = Omit<z.infer<typeof ConfigSchema>, 'PUBLIC_URL'> & {
  PUBLIC_URL: string;
  masterKey: Buffer | null;
  secureCookies: boolean;
  embedded: boolean;
  webauthn: { rpID: string; rpName: string; origins: string[] };
  devMailbox: boolean;
};

export class ConfigError extends Error {}

export function decodeKey(v: string): Buffer | null {
  if (/^[0-9a-fA-F]{64}$/.test(v)) return Buffer.from(v, 'hex');
  const b = Buffer.from(v, 'base64');
  return b.length === 32 ? b : null;
}

/** Parse the environment; throws ConfigError naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const clean = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const r = ConfigSchema.safeParse(clean);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const c = r.data;
  if (c.SESSION_IDLE_SECONDS > c.SESSION_ABSOLUTE_SECONDS)
    throw new ConfigError('Invalid configuration:\n  SESSION_IDLE_SECONDS: must not exceed SESSION_ABSOLUTE_SECONDS');
  if (c.PASSWORD_MIN_LENGTH_SINGLE_FACTOR < c.PASSWORD_MIN_LENGTH)
    throw new ConfigError('Invalid configuration:\n  PASSWORD_MIN_LENGTH_SINGLE_FACTOR: must not be below PASSWORD_MIN_LENGTH');
  if (c.RATE_LIMIT_DELAY_MAX_MS < c.RATE_LIMIT_DELAY_BASE_MS)
    throw new ConfigError('Invalid configuration:\n  RATE_LIMIT_DELAY_MAX_MS: must not be below RATE_LIMIT_DELAY_BASE_MS');
  if (c.NODE_ENV === 'production' && !c.THRESHOLD_MASTER_KEY)
    throw new ConfigError('Invalid configuration:\n  THRESHOLD_MASTER_KEY: required in production');
  const devMailbox = c.DEV_MAILBOX ? c.DEV_MAILBOX === 'on' : !c.DATABASE_URL;
  if (devMailbox && c.NODE_ENV === 'production')
    throw new ConfigError('Invalid configuration:\n  DEV_MAILBOX: must be off in production');
  if (c.SMS_PROVIDER === 'twilio' && (!c.SMS_TWILIO_ACCOUNT_SID || !c.SMS_TWILIO_AUTH_TOKEN || !c.SMS_TWILIO_FROM))
    throw new ConfigError('Invalid configuration:\n  SMS_TWILIO_ACCOUNT_SID, SMS_TWILIO_AUTH_TOKEN, SMS_TWILIO_FROM: required with SMS_PROVIDER=twilio');
  if (c.SMS_PROVIDER === 'webhook' && !c.SMS_WEBHOOK_URL)
    throw new ConfigError('Invalid configuration:\n  SMS_WEBHOOK_URL: required with SMS_PROVIDER=webhook');
  // Follows PORT, so changing the port alone keeps issuer, WebAuthn origin and links right.
  const PUBLIC_URL = c.PUBLIC_URL ?? `http://localhost:${c.PORT}`;
  const publicUrl = new URL(PUBLIC_URL);
  return {
    ...c,
    PUBLIC_URL,
    masterKey: c.THRESHOLD_MASTER_KEY ? decodeKey(c.THRESHOLD_MASTER_KEY) : null,
    secureCookies: PUBLIC_URL.startsWith('https:'),
    embedded: !c.DATABASE_URL,
    webauthn: {
      rpID: c.WEBAUTHN_RP_ID ?? publicUrl.hostname,
      rpName: c.WEBAUTHN_RP_NAME,
      origins: (c.WEBAUTHN_ORIGINS ?? publicUrl.origin).split(',').map((o) => o.trim()).filter(Boolean),
    },
    devMailbox,
  };
}
