import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, type Config } from './config/config.ts';
import { describe, type PasswordPolicy } from './authn/passwords/policy.ts';
import type { Logger } from './logger.ts';
import type { UserService } from './identity/users.ts';
import type { Audit } from './audit/audit.ts';
import type { Queryable } from './db/db.ts';

/** Active identities holding ADMIN: zero means nobody can manage users or unlock anyone. */
export async function activeAdmins(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM user_roles r JOIN identities i ON i.id = r.identity_id
      WHERE r.role = 'ADMIN' AND i.status = 'active'`,
  );
  return rows[0]?.n ?? 0;
}

/**
 * The master key: from the environment, or (embedded default only) generated once into the
 * data folder with a loud warning.
 */
export async function resolveMasterKey(config: Config, logger: Logger): Promise<Buffer> {
  if (config.masterKey) return config.masterKey;
  if (!config.embedded) throw new Error('THRESHOLD_MASTER_KEY is required when DATABASE_URL is set');
  await mkdir(config.DATA_DIR, { recursive: true });
  const file = join(config.DATA_DIR, 'master.key');
  let key: Buffer;
  try {
    key = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64');
  } catch {
    key = randomBytes(32);
    await writeFile(file, key.toString('base64'), { mode: 0o600 });
    await chmod(file, 0o600);
  }
  if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte key`);
  logger.warn({ file }, 'THRESHOLD_MASTER_KEY is not set: using a key generated into the data folder (development only)');
  return key;
}

/**
 * The first administrator: from THRESHOLD_ADMIN_EMAIL/PASSWORD, or in the embedded default a
 * generated one printed once. Nothing happens once any user exists.
 *
 * A configured password meets the password policy like any other, or the start is refused
 * (ConfigError naming THRESHOLD_ADMIN_PASSWORD and the reasons): the most powerful account of a
 * new install must not begin with a breached or guessable password, and nothing exists yet that
 * refusing could lock out.
 */
export async function bootstrapAdmin(config: Config, users: UserService, audit: Audit, print: (s: string) => void, policy?: PasswordPolicy) {
  if ((await users.count()) > 0) return null;
  let email = config.THRESHOLD_ADMIN_EMAIL;
  let password = config.THRESHOLD_ADMIN_PASSWORD;
  let generated = false;
  if (!email || !password) {
    if (!config.embedded) return null;
    email ??= 'admin@threshold.local';
    password = randomBytes(18).toString('base64url');
    generated = true;
  }
  if (!generated && policy) {
    const v = await policy.checkNewPassword({ password, identifier: email, hasSecondFactor: false });
    if (!v.ok) throw new ConfigError(`Invalid configuration:\n  THRESHOLD_ADMIN_PASSWORD: ${describe(v.reasons, v.minLength)} (${v.reasons.join(', ')})`);
  }
  const u = await users.create({ email, password, roles: ['ADMIN'] });
  await audit.append({ type: 'user.created', actor: 'system', subject: u.id, reason: 'BOOTSTRAP_ADMIN', data: { roles: u.roles } });
  if (generated) print(`\n  Threshold created the first administrator (shown once):\n    email:    ${email}\n    password: ${password}\n`);
  return u;
}
