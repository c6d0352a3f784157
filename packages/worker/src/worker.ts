import {
  ACCOUNTS,
  type AccountConfigInput,
  type Connection,
  createLogger,
  DEFAULT_PREFIX,
  LIMITS,
  type LimiterOptions,
  type Logger,
  type UpstreamUrls,
} from '@hfq/shared';
import {
  blockingSourceFor,
  CreditState,
  checkPrefix,
  checkRedisTarget,
  connectionFor,
  creditScope,
  DomainLimiter,
  EndpointSemaphore,
  EndpointStatusStore,
  isCluster,
  loadUpstreamUrls,
  parseOrThrow,
  RedisErrorLog,
  tierMonthlyCreditsUsd,
} from '@hfq/shared/internal';
import { setLogger } from '@huggingface/inference';
import type { Telemetry } from 'bullmq';
import { AccountRuntime } from './account-runtime.js';
import { HistoryRecorder } from './cockpit/history-recorder.js';
import { WorkerPresence } from './cockpit/worker-presence.js';
import { DEFAULT_PRICES, type PriceTable } from './cost.js';
import { listenForLanes } from './lane-announcements.js';
import { migrateLegacyLayout } from './legacy-layout.js';
import { rateChangeLogger } from './rate-change-log.js';
import { RouteSelection } from './route-selection.js';
import { SpendRecorder } from './spend-recorder.js';
import { WorkerEvents } from './worker-events.js';

export interface WorkerOptions {
  /**
   * A Redis URL, ioredis options, an ioredis `Redis` or `Cluster` (duplicated; yours to close), or
   * `{ clusterNodes: [{ host, port }, …], redisOptions? }` for a Redis Cluster.
   */
  connection: Connection;
  /** BullMQ key prefix, shared with producers. @defaultValue `'hfq'` */
  prefix?: string;
  /** The accounts this process serves: one queue and one BullMQ worker each. */
  accounts: AccountConfigInput[];
  /** Jobs run at once per account in this process. @defaultValue 16 */
  concurrency?: number;
  /**
   * Where the upstream is.
   * @defaultValue read from `HF_ROUTER_URL`, `HF_HUB_URL`, `HFQ_PROVIDER_URLS` and
   * `HF_ENDPOINTS_API_URL` as the CLI does; unset ones are the real Hugging Face and providers
   */
  upstream?: UpstreamUrls;
  /** Structured logger. @defaultValue a pino logger on stdout at `LOG_LEVEL` or info */
  logger?: Logger;
  /** Clock for credit resets and deadlines. @defaultValue Date.now */
  now?: () => number;
  /** Randomness for jitter. @defaultValue Math.random */
  random?: () => number;
  /** Tuning of the precise limiter (margin, learned-rate steps, backoff). */
  limiter?: LimiterOptions;
  /** Price table for spend estimates. @defaultValue `DEFAULT_PRICES` */
  prices?: PriceTable;
  /** Per-request upstream timeout, ms. @defaultValue 120000 */
  timeoutMs?: number;
  /** How often a held account checks whether it may resume, ms. @defaultValue 5000 */
  holdCheckMs?: number;
  /** BullMQ lock duration, ms. @defaultValue 30000 */
  lockDurationMs?: number;
  /** BullMQ stalled-job check interval, ms. @defaultValue 30000 */
  stalledIntervalMs?: number;
  /** Times a job may stall (its worker died) before it fails. @defaultValue 1 */
  maxStalledCount?: number;
  /**
   * While an account's HF credits are exhausted, or a provider key's balance (its 402), one real
   * queued request probes the router, or that key, this often (all workers together, by the
   * injected clock `now`); its success reopens that gate.
   * @defaultValue 600000
   */
  creditProbeMs?: number;
  /** Inference Endpoints: slot lease, lifecycle check interval, learned-concurrency recovery. */
  endpoints?: {
    /** A slot's lease: how soon a dead worker's slots come back. @defaultValue 30000 */
    leaseMs?: number;
    /** How often state, backlog and idle time are checked. @defaultValue 5000 */
    checkMs?: number;
    /** After a 429 cut, one slot comes back per this much quiet time. @defaultValue 30000 */
    recoverMs?: number;
  };
  /**
   * Tracing: BullMQ's OpenTelemetry integration, e.g. `new BullMQOtel({ tracerName: 'hfq' })` from `bullmq-otel`.
   * hfq adds a span per upstream call (see upstream-span.ts) through `@opentelemetry/api`, which
   * records nothing until an OpenTelemetry SDK is registered. @defaultValue off
   */
  telemetry?: Telemetry;
  /** How often the cockpit's heartbeat and history are written, ms. @defaultValue 5000 */
  cockpitFlushMs?: number;
}

export interface HfqWorker {
  readonly runtimes: ReadonlyMap<string, AccountRuntime>;
  /** Upstream answers, throttles, credit events and job outcomes, for metrics. */
  readonly events: WorkerEvents;
  /** This process's id in the live-workers list (`hfq status`, the board). */
  readonly workerId: string;
  /** Graceful: finishes in-flight jobs, takes no new ones, closes connections. */
  close(): Promise<void>;
}

export async function createWorker(options: WorkerOptions): Promise<HfqWorker> {
  const accounts = parseOrThrow(ACCOUNTS, options.accounts, 'accounts');
  const prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
  const logger =
    options.logger ?? createLogger({ name: 'hfq-worker', level: process.env.LOG_LEVEL ?? 'info' });
  setLogger({
    debug: (...args: unknown[]) => logger.debug({ hfClient: true }, args.map(String).join(' ')),
    info: (...args: unknown[]) => logger.debug({ hfClient: true }, args.map(String).join(' ')),
    warn: (...args: unknown[]) => logger.warn({ hfClient: true }, args.map(String).join(' ')),
    error: (...args: unknown[]) => logger.error({ hfClient: true }, args.map(String).join(' ')),
    log: (...args: unknown[]) => logger.debug({ hfClient: true }, args.map(String).join(' ')),
  });
  const now = options.now ?? Date.now;
  const upstream = options.upstream ?? loadUpstreamUrls(process.env);
  // Auto-pipelined on a standalone Redis (see connectionFor): every job's permit (and late-send
  // stamp) is a small command of its own, and the jobs of one tick share a socket write (this
  // connection never blocks).
  const redis = connectionFor(options.connection, 'worker', `${prefix}:hfq-worker-state`, true);
  // Every connection's errors once per condition, not once per reconnect attempt (redis-error-log.ts).
  const runtimes = new Map<string, AccountRuntime>();
  const redisErrors = new RedisErrorLog(logger, {
    secrets: () => [...runtimes.values()].flatMap((r) => r.routes.secrets()),
  });
  redisErrors.watch(redis, 'worker-state');
  // BullMQ's queues and workers of every account and lane: one client, apart from the limiter's.
  const queueRedis = connectionFor(options.connection, 'worker', `${prefix}:hfq-worker-queues`);
  redisErrors.watch(queueRedis, 'worker-queues');
  const blocking = blockingSourceFor(options.connection, `${prefix}:hfq-worker`);
  if ('duplicate' in blocking.connection) redisErrors.watch(blocking.connection, 'worker-blocking');
  try {
    await checkRedisTarget(redis, options.connection);
    if (isCluster(redis) && /\{[^}]+\}/.test(prefix)) {
      logger.warn(
        { prefix },
        'the prefix has a hash tag: every key of hfq hashes to one slot, on one master of the cluster. ' +
          'hfq tags its keys per account itself (docs/redis-cluster.md): drop the braces to spread the load',
      );
    }
    await migrateLegacyLayout({
      redis,
      prefix,
      accounts: await Promise.all(
        accounts.map(async (account) => ({ account, routes: await RouteSelection.create(account, {}) })),
      ),
      nowMs: now(),
      logger,
    });
  } catch (err) {
    redis.disconnect();
    queueRedis.disconnect();
    blocking.close();
    throw err;
  }
  const credits = new CreditState(redis, prefix, {
    ...(options.creditProbeMs !== undefined ? { probeIntervalMs: options.creditProbeMs } : {}),
  });
  // Included credits per scope, to note when pay-as-you-go began (an organisation's: its seats').
  const included = new Map(accounts.map((a) => [creditScope(a), tierMonthlyCreditsUsd(a.tier, a.seats)]));
  const spend = new SpendRecorder(credits, now, { logger, includedUsd: (scope) => included.get(scope) });
  const logRateChange = rateChangeLogger(logger, (domainId) =>
    [...runtimes.values()]
      .filter(
        (r) =>
          r.routes.routerDomains().some((d) => d.id === domainId) ||
          r.routes.providerDomains().some((p) => p.domain.id === domainId),
      )
      .map((r) => r.account.id),
  );
  const limiter = new DomainLimiter(redis, prefix, {
    random: options.random ?? Math.random,
    ...options.limiter,
    onRateChange: logRateChange,
  });
  const endpointSemaphore = new EndpointSemaphore(redis, prefix, {
    ...(options.endpoints?.leaseMs ? { leaseMs: options.endpoints.leaseMs } : {}),
    ...(options.endpoints?.recoverMs ? { recoverMs: options.endpoints.recoverMs } : {}),
  });
  const endpointStatus = new EndpointStatusStore(redis, prefix);
  const events = new WorkerEvents();
  try {
    for (const account of accounts) {
      const runtime = await AccountRuntime.start(account, {
        prefix,
        redis,
        connectionOptions: blocking.connection,
        queueRedis,
        limiter,
        credits,
        spend,
        logger,
        upstream,
        concurrency: options.concurrency ?? 16,
        now,
        prices: options.prices ?? DEFAULT_PRICES,
        timeoutMs: options.timeoutMs ?? 120_000,
        maxBodyBytes: 32 * 1024 * 1024,
        maxBinaryBytes: LIMITS.MAX_BINARY_OUTPUT_BYTES,
        holdCheckMs: options.holdCheckMs ?? 5_000,
        lockDurationMs: options.lockDurationMs ?? 30_000,
        stalledIntervalMs: options.stalledIntervalMs ?? 30_000,
        maxStalledCount: options.maxStalledCount ?? 1,
        endpointSemaphore,
        endpointStatus,
        endpointCheckMs: options.endpoints?.checkMs ?? 5_000,
        events,
        telemetry: options.telemetry,
        redisErrors,
      });
      runtimes.set(account.id, runtime);
      logger.info(
        { account: account.id, tier: account.tier, domain: runtime.routes.routerDomain.id },
        'account worker started',
      );
    }
  } catch (err) {
    await Promise.all([...runtimes.values()].map((r) => r.close()));
    await spend.close();
    redis.disconnect();
    queueRedis.disconnect();
    blocking.close();
    throw err;
  }

  // Lanes a producer adds to for the first time start at once (not on the next supervisor round).
  const announcements = await listenForLanes({ redis, prefix, runtimes, logger, redisErrors });
  const history = new HistoryRecorder({
    redis,
    prefix,
    events,
    runtimes,
    limiter,
    credits,
    now,
    flushEveryMs: options.cockpitFlushMs,
  });
  const presence = await WorkerPresence.start({
    redis,
    prefix,
    runtimes,
    concurrency: options.concurrency ?? 16,
    now,
    intervalMs: options.cockpitFlushMs,
  });

  let closing: Promise<void> | undefined;
  return {
    runtimes,
    events,
    workerId: presence.id,
    close() {
      closing ??= (async () => {
        await announcements.close();
        await Promise.all([...runtimes.values()].map((r) => r.close()));
        await presence.close();
        await history.close();
        await spend.close();
        await redis.quit().catch(() => redis.disconnect());
        await queueRedis.quit().catch(() => queueRedis.disconnect());
        blocking.close();
      })();
      return closing;
    },
  };
}
