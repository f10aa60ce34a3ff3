import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createAudit } from '../src/audit/audit.ts';
import { createFactorRegistry } from '../src/authn/methods/factors.ts';
import { createPasswordService } from '../src/authn/methods/password/password.ts';
import { systemClock } from '../src/clock.ts';
import { ConfigError, loadConfig } from '../src/config/config.ts';
import { DataDirLockedError } from '../src/db/data-lock.ts';
import { migrate } from '../src/db/migrate.ts';
import { openDb } from '../src/db/open.ts';
import { isAppError } from '../src/errors.ts';
import { createUserService } from '../src/identity/users.ts';
import { passwordPolicyFromConfig } from '../src/authn/passwords/policy.ts';
import { createLogger } from '../src/logger.ts';

/**
 * The operator's way in when nobody can sign in: `npm run user:create` (e.g. the first
 * administrator of a production install) and `npm run user:unlock` (an administrator locked out
 * by wrong passwords). Against DATABASE_URL, or the embedded folder when no server owns it.
 * Audited like the admin API, with actor `cli:<os user>`. A password the operator typed is never
 * printed; a generated one is printed once.
 *
 * Exit codes: 0 done, 1 refused (bad input, unknown user, duplicate email), 2 could not run
 * (configuration, database, or a server owning the embedded folder).
 */
const USAGE = `usage:
  npm run user:create -- --email EMAIL [--roles ADMIN,PATHOLOGIST] [--display-name NAME] [--password-stdin]
      without --password-stdin a password is generated and printed once
  npm run user:unlock -- --email EMAIL
      lifts a lockout (wrong passwords or second-factor codes) now`;

class UsageError extends Error {}

export async function runUserCli(
  argv: string[],
  io: {
    env?: Record<string, string | undefined>;
    out?: (s: string) => void;
    readPassword?: () => Promise<string>;
  } = {},
): Promise<number> {
  const out = io.out ?? ((s: string) => process.stdout.write(s + '\n'));
  const [cmd, ...rest] = argv;
  let args: ReturnType<typeof parse>;
  try {
    if (cmd !== 'create' && cmd !== 'unlock') throw new UsageError(`unknown command ${cmd ?? '(none)'}`);
    args = parse(rest);
    if (!args.email) throw new UsageError('--email is required');
    if (cmd === 'unlock' && (args.roles || args['password-stdin'] || args['display-name']))
      throw new UsageError('unlock takes only --email');
  } catch (e) {
    out(`${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
    return 1;
  }
  const config = loadConfig(io.env ?? process.env);
  const actor = `cli:${safeUser()}`;
  const db = await openDb(config, { command: `npm run user:${cmd}`, poolSize: 2 });
  try {
    await migrate(db);
    const clock = systemClock;
    const passwords = await createPasswordService({
      db,
      clock,
      concurrency: 1,
      lockoutThreshold: config.LOCKOUT_THRESHOLD,
      lockoutSeconds: config.LOCKOUT_SECONDS,
      methodsOf: createFactorRegistry({ db, clock }).methodsOf,
    });
    const users = createUserService({ db, clock, passwords });
    const audit = createAudit(db, clock);

    if (cmd === 'unlock') {
      const u = await users.byEmail(args.email);
      if (!u) {
        out(`no user with email ${args.email}`);
        return 1;
      }
      const { rows } = await db.query<{ locked_at: Date | null; locked_until: Date | null }>(
        'SELECT locked_at, locked_until FROM identities WHERE id = $1',
        [u.id],
      );
      await users.unlock(u.id);
      await audit.append({ type: 'user.unlocked', actor, subject: u.id, reason: 'CLI', data: { wasLocked: u.locked } });
      const was = rows[0]?.locked_at
        ? `was locked ${rows[0].locked_until ? `until ${rows[0].locked_until.toISOString()}` : 'until an administrator unlocks'}`
        : 'was not locked';
      out(`unlocked ${u.email} (${u.id}); it ${u.locked ? was : 'was not locked'}; failure counters reset`);
      return 0;
    }

    const typed = args['password-stdin'];
    const password = typed ? await (io.readPassword ?? readPasswordFromStdin)() : randomBytes(18).toString('base64url');
    const roles = (args.roles ?? '').split(',').map((r) => r.trim()).filter(Boolean);
    try {
      // A typed password meets the same policy as one set through the API (a generated one does).
      if (typed) await passwordPolicyFromConfig(config, createLogger('warn')).assertNewPassword({ password, identifier: args.email, hasSecondFactor: false });
      const u = await users.create({ email: args.email, password, roles, displayName: args['display-name'] });
      await audit.append({ type: 'user.created', actor, subject: u.id, reason: 'CLI', data: { roles: u.roles } });
      out(`created ${u.email} (${u.id}) with roles ${u.roles.join(', ') || '(none)'}`);
      if (!typed) out(`password (shown once): ${password}`);
      return 0;
    } catch (e) {
      if (isAppError(e)) {
        out(`refused: ${e.code}${e.detail ? `: ${e.detail}` : ''}`);
        return 1;
      }
      throw e;
    }
  } finally {
    await db.close();
  }
}

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      email: { type: 'string' },
      roles: { type: 'string' },
      'display-name': { type: 'string' },
      'password-stdin': { type: 'boolean' },
    },
    strict: true,
    allowPositionals: true,
  });
  // A password on the command line lands in shell history and `ps`: not offered.
  if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
  return values as { email?: string; roles?: string; 'display-name'?: string; 'password-stdin'?: boolean } & { email: string };
}

const safeUser = () => {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
};

/** The first line of standard input; on a terminal, asked for without echo. */
async function readPasswordFromStdin(): Promise<string> {
  const tty = process.stdin.isTTY === true;
  if (tty) process.stderr.write('password (not shown): ');
  const silent = new Writable({ write: (_c, _e, cb) => cb() });
  const rl = createInterface({ input: process.stdin, output: silent, terminal: tty });
  try {
    const line = await new Promise<string>((res, rej) => {
      rl.once('line', res);
      rl.once('close', () => rej(new UsageError('--password-stdin: no password on standard input')));
    });
    if (tty) process.stderr.write('\n');
    return line;
  } finally {
    rl.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runUserCli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      if (e instanceof DataDirLockedError)
        process.stderr.write(
          `refused, nothing changed: ${e.message}\nWhile the server runs, an administrator can do this through its API ` +
            `(POST /api/users, POST /api/users/:id/unlock); otherwise stop it, run this command, start it again.\n`,
        );
      else if (e instanceof ConfigError) process.stderr.write(`${e.message}\n`);
      else if (e instanceof UsageError) {
        process.stderr.write(`${e.message}\n`);
        process.exit(1);
      } else process.stderr.write(`user command failed: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(2);
    },
  );
}
