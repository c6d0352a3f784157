import type { AccountConfig } from '@hfq/shared';
import {
  accountBudgetUsd,
  accountQueueName,
  blockingConnection,
  creditScope,
  type EndpointSemaphore,
  type EndpointStatusStore,
  isRedisOutOfMemory,
  keyScope,
  markEndpointDemand,
  primaryWindow,
  publishEndpoints,
  type RedisClient,
  type RedisErrorLog,
  ResultLedger,
} from '@hfq/shared/internal';
import { type Job as BullJob, DelayedError, Queue, RateLimitError, type Telemetry, Worker } from 'bullmq';
import type { RedisOptions } from 'ioredis';
import type { AccountContext } from './account-context.js';
import { type HoldHooks, holdAccount, releaseHold, resumeIfPausedWithoutReason } from './account-hold.js';
import { BatchRuntime } from './batch-runtime.js';
import { EndpointLifecycle } from './endpoint-lifecycle.js';
import { queueStartLimit } from './endpoint-queue-limit.js';
import { AccountEndpoint } from './endpoint-slots.js';
import { logJobOutcomes } from './job-outcome-log.js';
import { processJob } from './process-job.js';
import { RouteSelection } from './route-selection.js';
import { isShutdownAbort } from './shutdown.js';
import { createUpstreamFetch } from './upstream-fetch.js';

/** What every account of a worker process shares: the processor's context less the per-account parts. */
export interface RuntimeOptions
  extends Omit<AccountContext, 'account' | 'scope' | 'queue' | 'routes' | 'hubFetch' | 'hold' | 'endpoints'> {
  prefix: string;
  redis: RedisClient;
  /** What the BullMQ workers' connections are made from (see `blockingSourceFor`). */
  connectionOptions: RedisOptions | RedisClient;
  concurrency: number;
  holdCheckMs: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
  /** Inference Endpoints: the shared semaphore and status, and how often their lifecycle is checked. */
  endpointSemaphore: EndpointSemaphore;
  endpointStatus: EndpointStatusStore;
  endpointCheckMs: number;
  /** BullMQ's OpenTelemetry integration (`bullmq-otel`), when tracing is on. */
  telemetry?: Telemetry | undefined;
  /** Where Redis errors of the account's queues and workers are logged, once per condition. */
  redisErrors: RedisErrorLog;
}

export { holdKey } from './account-hold.js';

/** A job waiting for an endpoint slot tries again at least this often (a slot another process freed). */
const ENDPOINT_POLL_MS = 20;
/**
 * A demand mark (a job found its endpoint unavailable) lasts at least this long: longer than a
 * held job's recheck (endpoint-route.ts), so held jobs keep it set while they wait.
 */
const ENDPOINT_DEMAND_MIN_TTL_MS = 10_000;

/** One account: its queue, its BullMQ worker, and the supervisor that lifts a hold when its cause clears. */
export class AccountRuntime {
  readonly queue: Queue;
  readonly worker: Worker;
  /** Batches: the `batch-<account>` queue's processor and per-item progress of batch children. */
  readonly batches: BatchRuntime;
  private readonly supervisor: NodeJS.Timeout;
  private lastHoldReason: string | undefined;
  /** The account's Inference Endpoints in this process, and their backlog-driven lifecycle. */
  readonly endpoints: AccountEndpoint[];
  private readonly lifecycle: EndpointLifecycle | undefined;
  private running = 0;

  private constructor(
    readonly account: AccountConfig,
    readonly routes: RouteSelection,
    private readonly options: RuntimeOptions,
  ) {
    const name = accountQueueName(account.id);
    this.queue = new Queue(name, { connection: options.redis, prefix: options.prefix });
    this.queue.on('error', options.redisErrors.listener(`queue ${account.id}`));
    this.endpoints = (account.endpoints ?? []).map(
      (config) =>
        new AccountEndpoint(
          config,
          account.id,
          options.endpointSemaphore,
          options.endpointStatus,
          ENDPOINT_POLL_MS,
          options.timeoutMs,
          {
            ttlMs: Math.max(3 * options.endpointCheckMs, ENDPOINT_DEMAND_MIN_TTL_MS),
            mark: (ttlMs) =>
              markEndpointDemand(options.redis, options.prefix, account.id, config.name, ttlMs),
          },
        ),
    );
    this.lifecycle =
      this.endpoints.length > 0
        ? new EndpointLifecycle(this.endpoints, {
            redis: options.redis,
            prefix: options.prefix,
            hfToken: account.hfToken,
            endpointsApiUrl: options.upstream.endpointsApiUrl,
            checkMs: options.endpointCheckMs,
            logger: options.logger,
            events: options.events,
          })
        : undefined;
    const ctx: AccountContext = {
      account,
      endpoints: this.endpoints,
      scope: creditScope(account),
      queue: this.queue,
      routes,
      limiter: options.limiter,
      credits: options.credits,
      spend: options.spend,
      logger: options.logger,
      upstream: options.upstream,
      hubFetch: createUpstreamFetch(options.upstream, options.maxBodyBytes).fetch,
      now: options.now,
      prices: options.prices,
      timeoutMs: options.timeoutMs,
      maxBodyBytes: options.maxBodyBytes,
      maxBinaryBytes: options.maxBinaryBytes,
      events: options.events,
      hold: (reason) => this.hold(reason),
      ...(account.resultReuse ? { results: new ResultLedger(options.redis, options.prefix) } : {}),
    };
    const processor = async (job: BullJob, token?: string, signal?: AbortSignal) => {
      const started = performance.now();
      this.running += 1;
      const report = (outcome: 'completed' | 'failed' | 'requeued') =>
        options.events.emit('job', {
          account: account.id,
          outcome,
          durationMs: Math.round(performance.now() - started),
        });
      // Graceful shutdown (shutdown.ts) aborted this run: whatever it threw, hand the job back to
      // the head of its queue. BullMQ moves a RateLimitError's job from active to wait, lock
      // released: no attempt used, no stall counted (and a batch child is not counted as failed).
      const run = () =>
        processJob(ctx, job, token, signal ?? new AbortController().signal).catch((err: unknown) => {
          throw isShutdownAbort(signal) ? new RateLimitError() : err;
        });
      try {
        const result = await this.batches.track(job, run);
        report('completed');
        return result;
      } catch (err) {
        report(err instanceof RateLimitError || err instanceof DelayedError ? 'requeued' : 'failed');
        throw err;
      } finally {
        this.running -= 1;
      }
    };
    this.batches = new BatchRuntime({
      account: account.id,
      prefix: options.prefix,
      redis: options.redis,
      connectionOptions: options.connectionOptions,
      logger: options.logger,
      redisErrors: options.redisErrors,
      lockDurationMs: options.lockDurationMs,
      stalledIntervalMs: options.stalledIntervalMs,
    });
    this.worker = new Worker(name, processor, {
      connection: blockingConnection(options.connectionOptions),
      prefix: options.prefix,
      concurrency: options.concurrency,
      autorun: false,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: options.maxStalledCount,
      ...(options.telemetry ? { telemetry: options.telemetry } : {}),
    });
    this.worker.on(
      'error',
      options.redisErrors.listener(`worker ${account.id}`, (err) =>
        isRedisOutOfMemory(err)
          ? {
              level: 'error',
              msg: 'Redis is full (maxmemory reached, writes refused): no job can move until memory is freed or maxmemory raised; retrying',
            }
          : { level: 'error', msg: 'worker error' },
      ),
    );
    logJobOutcomes(this.worker, options.logger, account.id);
    this.supervisor = setInterval(() => void this.supervise().catch(() => {}), options.holdCheckMs);
    this.supervisor.unref();
  }

  /** Jobs this process is running for the account now (for the heartbeat). */
  get inFlight(): number {
    return this.running;
  }

  static async start(account: AccountConfig, options: RuntimeOptions): Promise<AccountRuntime> {
    const routes = await RouteSelection.create(account, options.upstream);
    const runtime = new AccountRuntime(account, routes, options);
    // BullMQ's own limiter keeps surplus jobs waiting in Redis (visible in Bull Board) and gives
    // queue.rateLimit() the `max` it needs; the precise limit is the domain limiter's.
    // An operator's `hfq limit` (Admin.setLimit) outlives worker restarts.
    await runtime.applyQueueLimit();
    // Before the first job: producers index the jobs the account's endpoints serve from this.
    await publishEndpoints(options.redis, options.prefix, account.id, account.endpoints ?? []);
    void runtime.worker
      .run()
      .catch((err: Error) => options.logger.error({ err: err.message }, 'worker stopped'));
    await runtime.worker.waitUntilReady();
    await runtime.batches.start();
    return runtime;
  }

  private holdTarget() {
    return {
      redis: this.options.redis,
      prefix: this.options.prefix,
      queue: this.queue,
      accountId: this.account.id,
    };
  }

  private queueLimitApplied = false;

  /**
   * BullMQ's coarse limiter, from the domain's limit or an operator's override. A full Redis
   * refuses the write: the worker starts all the same, says why, and the supervisor tries again.
   */
  private async applyQueueLimit(): Promise<void> {
    const primary = primaryWindow(this.routes.routerDomain.windows) ?? { max: 1000, durationMs: 1000 };
    try {
      const { override } = await this.options.limiter.state(this.routes.routerDomain.id);
      // Never below the configured limit: an override that lapses must not leave the queue capped.
      const max = queueStartLimit(
        this.account,
        Math.max(override ?? primary.max, primary.max),
        primary.durationMs,
      );
      await this.queue.setGlobalRateLimit(max, primary.durationMs);
      this.queueLimitApplied = true;
    } catch (err) {
      if (!isRedisOutOfMemory(err)) throw err;
      this.options.logger.error(
        { account: this.account.id, err: (err as Error).message },
        'Redis is full (maxmemory reached, writes refused): the worker waits for room and keeps trying',
      );
    }
  }

  /** Pause the account's queue (every worker, every machine): nothing fails, nothing is lost. */
  async hold(reason: string, hooks?: HoldHooks): Promise<void> {
    const { logger } = this.options;
    await holdAccount(this.holdTarget(), reason, hooks);
    if (this.lastHoldReason !== reason) {
      this.options.events.emit('hold', { account: this.account.id, held: true, reason });
      this.lastHoldReason = reason;
      logger.error(
        { account: this.account.id, reason },
        'account held: its queue is paused until the cause clears',
      );
    }
  }

  /** One supervisor round: lift a hold whose cause cleared; resume a queue paused with no reason. */
  async supervise(): Promise<void> {
    if (!this.queueLimitApplied) await this.applyQueueLimit();
    if (await this.liftHoldIfClear()) return;
    if (await resumeIfPausedWithoutReason(this.holdTarget())) {
      this.options.logger.warn(
        { account: this.account.id },
        'queue was paused with no hold reason: resumed (a cause that still holds will hold it again)',
      );
    }
  }

  /** Resume a queue hfq paused once the router or a provider key can take work again. */
  async liftHoldIfClear(): Promise<boolean> {
    const { now, logger } = this.options;
    if (!(await releaseHold(this.holdTarget(), () => this.canRun(now())))) return false;
    this.lastHoldReason = undefined;
    this.options.events.emit('hold', { account: this.account.id, held: false });
    logger.info({ account: this.account.id, scope: creditScope(this.account) }, 'hold lifted: queue resumed');
    return true;
  }

  private async canRun(nowMs: number): Promise<boolean> {
    const { credits } = this.options;
    const account = this.account;
    const scope = creditScope(account);
    const [spent, gate] = await Promise.all([credits.spend(scope, nowMs), credits.status(scope, nowMs)]);
    const underBudget = spent.hfRouterUsd < (accountBudgetUsd(account) ?? Number.POSITIVE_INFINITY);
    if (gate.state === 'ok' && underBudget) return true;
    // A router probe is due (router-probe.ts): resume, so one queued job can be that probe; a
    // spent budget takes no probe either.
    if (gate.state === 'exhausted' && gate.nextProbeAtMs <= nowMs && underBudget) return true;
    if (account.providerBudgetUsd !== undefined && spent.providerKeyUsd >= account.providerBudgetUsd)
      return false;
    for (const provider of this.routes.providerDomains()) {
      const key = await credits.status(keyScope(provider.domain.id), nowMs);
      // A key's probe is due (key-probe.ts): resume, so one queued job can be that probe.
      if (key.state === 'ok' || (key.state === 'exhausted' && key.nextProbeAtMs <= nowMs)) return true;
    }
    return false;
  }

  /** Stop taking jobs and wait for the active ones (graceful), then stop the supervisor. */
  async close(): Promise<void> {
    clearInterval(this.supervisor);
    this.lifecycle?.close();
    await this.worker.close();
    for (const endpoint of this.endpoints) endpoint.close();
    await this.lifecycle?.idle();
    await this.batches.close();
    await this.queue.close();
  }
}
