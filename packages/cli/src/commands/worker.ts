import { ConfigError, createLogger, type HfqConfig, type Logger } from '@hfq/shared';
import { RedisErrorLog, routeIoredisConsole } from '@hfq/shared/internal';
import {
  createHealthServer,
  createWorker,
  type HealthServer,
  type HfqWorker,
  shutdownGracefully,
} from '@hfq/worker';
import { checkUpstreamAndTokens } from '@hfq/worker/internal';

import { operatorConfig } from './shared-config.js';

export const WORKER_HELP = `hfq worker — run a worker process for the configured accounts

Configured only through the environment (see README, "Configuration"):
  REDIS_URL (or REDIS_CLUSTER_NODES), HFQ_PREFIX, HFQ_ACCOUNTS_FILE or HFQ_ACCOUNT + HF_TOKEN (+ HFQ_TIER, HFQ_BILL_TO,
  HFQ_PROVIDER_KEYS, HFQ_FALLBACK_PROVIDERS, HFQ_SEATS, HFQ_LIMITS, …), HFQ_CONCURRENCY,
  HF_ROUTER_URL, HF_HUB_URL, HFQ_PROVIDER_URLS, HFQ_METRICS_PORT, HFQ_SHUTDOWN_GRACE_MS, LOG_LEVEL.

At start it asks the Hub once who each HF token belongs to (a refused token stops it, exit 2) and
logs which upstream it talks to: Hugging Face, the simulator, or the URLs set. An HFQ_* variable
it does not know stops it too, naming the one it most likely means.

Serves /metrics (Prometheus), /healthz and /readyz on HFQ_METRICS_PORT (default 9464; 0 picks a
free port, logged in the "worker ready" line).

SIGTERM or SIGINT stops taking jobs and lets in-flight ones finish for HFQ_SHUTDOWN_GRACE_MS
(default 30000); jobs still running then are handed back to the head of their queue with no
attempt used, and the process exits 0. A second signal exits at once (jobs it leaves active are
re-delivered when their locks expire).`;

async function startHealth(worker: HfqWorker, config: HfqConfig): Promise<HealthServer> {
  try {
    return await createHealthServer({
      worker,
      connection: config.connection,
      prefix: config.prefix,
      accounts: config.accounts,
      port: config.metricsPort,
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES') {
      throw new ConfigError(
        'HFQ_METRICS_PORT',
        `cannot listen on port ${config.metricsPort} (${code}): set a free port, or 0 for any free one`,
      );
    }
    throw err;
  }
}

export async function runWorker(env: NodeJS.ProcessEnv): Promise<void> {
  const config = operatorConfig(env);
  const logger = createLogger({ name: 'hfq-worker', level: config.logLevel });
  routeIoredisConsole(new RedisErrorLog(logger));
  // Once, before taking jobs: which upstream this is, and whether the Hub accepts each token.
  await checkUpstreamAndTokens({
    accounts: config.accounts,
    upstream: config.upstream,
    logger,
    tokenVariable: env.HFQ_ACCOUNTS_FILE ? 'HFQ_ACCOUNTS_FILE' : 'HF_TOKEN',
  });
  const worker = await createWorker({
    connection: config.connection,
    prefix: config.prefix,
    accounts: config.accounts,
    concurrency: config.concurrency,
    upstream: config.upstream,
    logger,
    lockDurationMs: config.lockDurationMs,
    stalledIntervalMs: config.stalledIntervalMs,
    maxStalledCount: config.maxStalledCount,
    creditProbeMs: config.creditProbeMs,
    endpoints: { leaseMs: config.endpointLeaseMs, checkMs: config.endpointCheckMs },
    // Diagnostics: keep every admission's Redis time in `<domain>:audit` (tests of the limit use it).
    ...(config.limiterAudit ? { limiter: { audit: true } } : {}),
  });
  let health: HealthServer;
  try {
    health = await startHealth(worker, config);
  } catch (err) {
    await worker.close();
    throw err;
  }
  // Signals are handled before "worker ready" is said: a supervisor may stop it on that line.
  handleSignals(worker, health, config.shutdownGraceMs, logger);
  logger.info(
    { accounts: config.accounts.map((a) => a.id), concurrency: config.concurrency, metricsPort: health.port },
    'worker ready',
  );
}

/** First SIGTERM/SIGINT: graceful stop (see shutdownGracefully), exit 0. Second: exit at once. */
function handleSignals(worker: HfqWorker, health: HealthServer, graceMs: number, logger: Logger): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn(
        { signal },
        'second signal: exiting now; jobs still active are re-delivered after their locks expire',
      );
      process.exit(130);
    }
    stopping = true;
    health.markStopping();
    logger.info({ signal, graceMs }, 'stopping: no new jobs; finishing in-flight jobs');
    void shutdownGracefully(worker, { graceMs, logger })
      .then(async (outcome) => {
        await health.close();
        if (outcome.timedOut) {
          logger.error(
            outcome,
            'worker did not close in time: exiting; its active jobs are re-delivered after their locks expire',
          );
          process.exit(1);
        }
        logger.info(outcome, 'worker stopped');
        process.exit(0);
      })
      .catch((err: Error) => {
        logger.error({ err: err.message }, 'error while stopping');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
