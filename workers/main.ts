import { loadConfig, ConfigError } from '../src/config/config.ts';
import { createLogger } from '../src/logger.ts';
import { systemClock } from '../src/clock.ts';
import { createPgDb } from '../src/db/pg.ts';
import { migrate } from '../src/db/migrate.ts';
import { openGeo } from '../src/risk/geo.ts';
import { createRiskScorer } from '../src/risk/scorer.ts';
import { startRiskWorker } from './risk-score.worker.ts';
import { startNotifyWorker } from './notify.worker.ts';
import { startBacktestWorker } from './backtest.worker.ts';
import { createNotifier } from '../src/notify/notifier.ts';
import { startHealthServer } from './health-server.ts';
import { Sealer } from '../src/crypto/seal.ts';
import { observeWorker, registry } from '../src/metrics/metrics.ts';

/** `npm run worker`: the BullMQ workers as their own process (needs DATABASE_URL and REDIS_URL). */
async function main() {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  if (!config.DATABASE_URL || !config.REDIS_URL)
    throw new ConfigError('Invalid configuration:\n  DATABASE_URL, REDIS_URL: the worker process needs both (the embedded default runs jobs in-process)');
  const db = createPgDb(config.DATABASE_URL, 5);
  await migrate(db);
  const geo = await openGeo(config.GEOIP_DB);
  const scorer = createRiskScorer({
    db,
    geo,
    config,
    onListError: (err) => logger.error({ err }, 'risk reputation list unreadable; keeping the last good one'),
  });
  const risk = startRiskWorker({ redisUrl: config.REDIS_URL, queueName: config.RISK_QUEUE, scorer, logger });
  const notifier = createNotifier(config, db);
  // Notify payloads arrive sealed under the master key (codes and links are never clear in Redis).
  if (!config.masterKey) throw new ConfigError('Invalid configuration:\n  THRESHOLD_MASTER_KEY: the worker process needs it (notify payloads are sealed with it)');
  const sealer = new Sealer(config.masterKey);
  const notify = startNotifyWorker({
    redisUrl: config.REDIS_URL,
    queueName: config.NOTIFY_QUEUE,
    deps: { db, email: notifier.email, sms: notifier.sms, open: (s, aad) => sealer.open(s, aad).toString('utf8') },
    logger,
  });
  const backtest = startBacktestWorker({ redisUrl: config.REDIS_URL, queueName: config.BACKTEST_QUEUE, deps: { db, clock: systemClock, geo, config }, logger });
  logger.info({ queues: [config.RISK_QUEUE, config.NOTIFY_QUEUE, config.BACKTEST_QUEUE] }, 'Threshold workers running');
  for (const [w, q] of [[risk, config.RISK_QUEUE], [notify, config.NOTIFY_QUEUE], [backtest, config.BACKTEST_QUEUE]] as const) observeWorker(w.worker, q);
  // Probes for orchestrators: ready while the database answers and every worker consumes.
  const consuming = (w: { worker: { isRunning(): boolean; isPaused(): boolean; closing?: unknown } }) => async () => {
    if (!w.worker.isRunning() || w.worker.isPaused() || w.worker.closing) throw new Error('not consuming');
  };
  const health = config.WORKER_HEALTH_PORT
    ? await startHealthServer({
        port: config.WORKER_HEALTH_PORT,
        host: config.HOST,
        checks: { db: async () => void (await db.query('SELECT 1')), risk: consuming(risk), notify: consuming(notify), backtest: consuming(backtest) },
        // The worker's own metrics (job processing times, process) on its probe port, not pushed via Redis.
        metrics: config.METRICS_TOKEN ? { token: config.METRICS_TOKEN, render: async () => ({ contentType: registry.contentType, body: await registry.metrics() }) } : undefined,
      })
    : null;
  if (health) logger.info({ port: config.WORKER_HEALTH_PORT }, 'worker probes on /health/live and /health/ready');
  const stop = async () => {
    health?.close();
    await risk.close();
    await notify.close();
    await backtest.close();
    await notifier.close();
    await db.close();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((e) => {
  process.stderr.write(e instanceof ConfigError ? `${e.message}\n` : `worker failed: ${e instanceof Error ? e.stack : e}\n`);
  process.exit(1);
});
