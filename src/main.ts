import { serve } from '@hono/node-server';
import { loadConfig, ConfigError, type Config } from './config/config.ts';
import { systemClock, type Clock } from './clock.ts';
import { createLogger, type Logger } from './logger.ts';
import { migrate } from './db/migrate.ts';
import { openDb } from './db/open.ts';
import { DataDirLockedError } from './db/data-lock.ts';
import { createBullJobs } from './jobs/bullmq.ts';
import { createInProcessJobs } from './jobs/in-process.ts';
import { backtestProcessor } from './backtest/job.ts';
import type { Jobs } from './jobs/jobs.ts';
import { openGeo } from './risk/geo.ts';
import { createRiskScorer } from './risk/scorer.ts';
import { riskProcessor } from '../workers/risk-score.worker.ts';
import { notifyProcessor } from '../workers/notify.worker.ts';
import { createNotifier } from './notify/notifier.ts';
import { activeAdmins, bootstrapAdmin, resolveMasterKey } from './bootstrap.ts';
import { breachFilter } from './authn/passwords/breach-corpus.ts';
import { buildServices } from './services.ts';
import { createApp } from './http/app.ts';

export { openDb };

/** Composition root: config → adapters → services → app → serve. */
export async function start(env: Record<string, string | undefined> = process.env, clock: Clock = systemClock) {
  const config = loadConfig(env);
  const logger = createLogger(config.LOG_LEVEL);
  // Embedded: this process owns DATA_DIR until stop() (a second one is refused, naming this pid).
  const db = await openDb(config, {
    command: 'npm start',
    onStaleLock: (prev) =>
      logger.warn({ previousPid: prev?.pid, previousCommand: prev?.command }, 'took over the data folder lock of a process that is gone'),
  });
  await migrate(db);
  let jobs: Jobs;
  if (config.REDIS_URL) {
    jobs = createBullJobs(config.REDIS_URL);
  } else {
    // Embedded default: the same job interface, run in this process.
    const scorer = createRiskScorer({
      db,
      geo: await openGeo(config.GEOIP_DB),
      config,
      onListError: (err) => logger.error({ err }, 'risk reputation list unreadable; keeping the last good one'),
    });
    const notifier = createNotifier(config, db, { clock });
    jobs = createInProcessJobs({
      [config.RISK_QUEUE]: riskProcessor(scorer),
      [config.NOTIFY_QUEUE]: notifyProcessor({ db, email: notifier.email, sms: notifier.sms, clock }),
      [config.BACKTEST_QUEUE]: backtestProcessor({ db, clock, geo: () => openGeo(config.GEOIP_DB), config }),
    });
  }
  const masterKey = await resolveMasterKey(config, logger);
  const services = await buildServices({ config, db, jobs, clock, logger, masterKey });
  await services.keys.active();
  await bootstrapAdmin(config, services.users, services.audit, (s) => process.stdout.write(s + '\n'), services.passwordPolicy);
  warnOperator(config, logger, await activeAdmins(db));
  // Expired sessions are removed from the store (also on access); a sweep catches the idle ones.
  const sweeper = setInterval(() => void services.sessions.sweep().catch(() => {}), 10 * 60_000);
  sweeper.unref();
  // The breach filter (1.1 MB) is read now rather than on the first password to be checked.
  breachFilter();
  const app = createApp(services);
  const server = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST });
  await new Promise<void>((r) => server.once('listening', () => r()));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.PORT;
  // Production runs compiled JavaScript (dist/); development runs the TypeScript through tsx.
  const runtime = import.meta.url.endsWith('.js') ? 'compiled' : 'typescript';
  logger.info({ port, embedded: config.embedded, runtime }, `Threshold listening on http://${config.HOST}:${port}`);
  const stop = async () => {
    clearInterval(sweeper);
    await new Promise<void>((r) => server.close(() => r()));
    await services.close();
    await jobs.close();
    await db.close();
  };
  return { app, services, port, stop };
}

/** What a production operator must hear at start: nobody can sign in, or mail goes nowhere. */
export function warnOperator(config: Config, logger: Logger, admins: number) {
  if (admins === 0)
    logger.warn(
      'No administrator exists, so nobody can manage users. Create one: npm run user:create -- --email you@example.com --roles ADMIN ' +
        '(or set THRESHOLD_ADMIN_EMAIL and THRESHOLD_ADMIN_PASSWORD before the first start)',
    );
  if (config.NODE_ENV === 'production' && !config.SMTP_URL)
    logger.warn(
      'SMTP_URL is not set: email codes, factor-change notices and "this wasn\'t me" links are not delivered (email is not offered as a factor)',
    );
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  start().then(
    ({ stop }) => {
      const shutdown = () => stop().then(() => process.exit(0), () => process.exit(1));
      process.once('SIGTERM', shutdown);
      process.once('SIGINT', shutdown);
    },
    (e) => {
      if (e instanceof ConfigError || e instanceof DataDirLockedError) process.stderr.write(`Threshold cannot start: ${e.message}\n`);
      else process.stderr.write(`Threshold failed to start: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}
