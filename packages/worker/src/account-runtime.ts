import type { AccountConfig } from '@hfq/shared';
import {
  creditScope,
  type EndpointSemaphore,
  type EndpointStatusStore,
  type LaneId,
  laneProvider,
  primaryWindow,
  publishEndpoints,
  type RedisClient,
  type RedisErrorLog,
  ResultLedger,
  ROUTER_LANE,
  readLanes,
} from '@hfq/shared/internal';
import {
  type Job as BullJob,
  DelayedError,
  type Queue,
  RateLimitError,
  type Telemetry,
  type Worker,
} from 'bullmq';
import type { RedisOptions } from 'ioredis';
import type { AccountContext } from './account-context.js';
import { type HoldHooks, holdAccount, releaseHold, resumeIfPausedWithoutReason } from './account-hold.js';
import { BatchRouteRuntime, batchStores } from './batch-route/batch-route-runtime.js';
import { batchRouteEnabled } from './batch-route/batch-route-settings.js';
import { BatchRuntime } from './batch-runtime.js';
import { accountEndpoints } from './endpoints/account-endpoints.js';
import type { EndpointLifecycle } from './endpoints/endpoint-lifecycle.js';
import { queueStartLimit } from './endpoints/endpoint-queue-limit.js';
import type { AccountEndpoint } from './endpoints/endpoint-slots.js';
import { LaneQueueLimits } from './lane-queue-limit.js';
import { laneHasRoute } from './lane-route-check.js';
import { LaneRuntime } from './lane-runtime.js';
import { processJob } from './process-job.js';
import { RouteSelection } from './route-selection.js';
import { isShutdownAbort } from './shutdown-abort.js';
import { createUpstreamFetch } from './upstream-fetch.js';

/** What every account of a worker process shares: the processor's context less the per-account parts. */
export interface RuntimeOptions
  extends Omit<
    AccountContext,
    | 'account'
    | 'scope'
    | 'queue'
    | 'lane'
    | 'routes'
    | 'hubFetch'
    | 'hold'
    | 'limitQueue'
    | 'wakeLane'
    | 'endpoints'
  > {
  prefix: string;
  redis: RedisClient;
  /**
   * The client of the process's BullMQ queues and workers (their regular commands; each worker
   * adds its blocking connection): one for all accounts and lanes, apart from `redis`, so that a
   * permit's answer never queues behind BullMQ's traffic.
   */
  queueRedis: RedisClient;
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
  /** A lane other than the router's idle this long is closed (see `LANE_IDLE_MS`). */
  laneIdleMs?: number;
}

export { holdKey } from './account-hold.js';

/** A lane other than the router's with no job in this process for this long, and none in Redis, is closed. */
export const LANE_IDLE_MS = 60_000;
/** The supervisor reads the lane registry every this many rounds (30 s at the default 5 s). */
const REGISTRY_EVERY_ROUNDS = 6;
/** How often the batch route plans parked jobs and watches its batches (see batch-route/batch-route-runtime.ts). */
export const BATCH_ROUND_MS = 2_000;

/**
 * One account: its lanes (a queue and a BullMQ worker per route, see lane-runtime.ts), its
 * batches, its Inference Endpoints' lifecycle, and the supervisor that starts lanes the registry
 * shows, closes idle ones and lifts a lane's hold when its cause clears.
 */
export class AccountRuntime {
  /** The lanes running in this process; the router lane always. */
  readonly lanes = new Map<LaneId, LaneRuntime>();
  /** Batches: the `batch-<account>` queue's processor and per-item progress of batch children. */
  readonly batches: BatchRuntime;
  private readonly supervisor: NodeJS.Timeout;
  private readonly lastHoldReason = new Map<LaneId, string>();
  /** When each lane was last closed here (performance.now() ms): a later enqueue starts it again. */
  private readonly closedAt = new Map<LaneId, number>();
  private readonly starting = new Map<LaneId, Promise<LaneRuntime | undefined>>();
  /** The account's Inference Endpoints in this process, and their backlog-driven lifecycle. */
  readonly endpoints: AccountEndpoint[];
  private readonly lifecycle: EndpointLifecycle | undefined;
  private readonly ctx: Omit<AccountContext, 'queue' | 'lane' | 'hold' | 'limitQueue' | 'wakeLane'>;
  /** Each lane's context, by its queue (see `laneContext`). */
  private readonly laneContexts = new WeakMap<Queue, AccountContext>();
  /** BullMQ's coarse limiter of each lane's queue, set the first time the lane waits (lane-queue-limit.ts). */
  private readonly queueLimits: LaneQueueLimits;
  private closing = false;
  private supervising: Promise<void> | undefined;
  private rounds = 1;
  /** The batch route (jobs with a deadline and preference `cost`); undefined when the account turned it off. */
  private batchRoute: BatchRouteRuntime | undefined;
  private batchTimer: NodeJS.Timeout | undefined;
  private batchRound: Promise<void> | undefined;

  private constructor(
    readonly account: AccountConfig,
    readonly routes: RouteSelection,
    readonly options: RuntimeOptions,
  ) {
    ({ endpoints: this.endpoints, lifecycle: this.lifecycle } = accountEndpoints(account, options));
    this.queueLimits = new LaneQueueLimits(
      (lane) => this.queueStartLimitOf(lane),
      options.logger,
      account.id,
    );
    this.ctx = {
      account,
      endpoints: this.endpoints,
      scope: creditScope(account),
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
      ...(account.resultReuse ? { results: new ResultLedger(options.redis, options.prefix) } : {}),
      ...(batchRouteEnabled(account) ? { batchRoute: batchStores(options.redis, options.prefix) } : {}),
    };
    this.batches = new BatchRuntime({
      account: account.id,
      prefix: options.prefix,
      redis: options.redis,
      queueRedis: options.queueRedis,
      connectionOptions: options.connectionOptions,
      logger: options.logger,
      redisErrors: options.redisErrors,
      lockDurationMs: options.lockDurationMs,
      stalledIntervalMs: options.stalledIntervalMs,
    });
    this.supervisor = setInterval(
      () =>
        void this.supervise().catch((err: Error) =>
          options.logger.warn(
            { account: account.id, err: err.message },
            'supervisor round failed; next round tries again',
          ),
        ),
      options.holdCheckMs,
    );
    this.supervisor.unref();
  }

  /** Run one job of a lane: the processor's context is the lane's (its queue, its hold). */
  private async process(lane: LaneRuntime, job: BullJob, token?: string, signal?: AbortSignal) {
    const { options, account } = this;
    const started = performance.now();
    const report = (outcome: 'completed' | 'failed' | 'requeued') =>
      options.events.emit('job', {
        account: account.id,
        outcome,
        durationMs: Math.round(performance.now() - started),
      });
    const ctx = this.laneContext(lane.lane, lane.queue);
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
    }
  }

  /**
   * The processor's context in one lane: its queue, its hold and its wait's coarse limit. Built
   * once per lane's queue (a lane started again has a new queue): every job of the lane shares it
   * (bench:load: copying the account's context per job was the hfq function with the most CPU).
   */
  private laneContext(lane: LaneId, queue: Queue): AccountContext {
    const known = this.laneContexts.get(queue);
    if (known) return known;
    const ctx: AccountContext = {
      ...this.ctx,
      lane,
      queue,
      hold: (reason) => this.hold(reason, undefined, lane),
      limitQueue: () => this.queueLimits.require(lane, queue),
      wakeLane: async () => {
        await this.options.queueRedis.zadd(queue.toKey('marker'), 0, '0');
      },
    };
    this.laneContexts.set(queue, ctx);
    return ctx;
  }

  /** The router lane's queue: the account queue (`account-{<id>}`). */
  get queue(): Queue {
    return this.routerLane().queue;
  }

  /** The router lane's BullMQ worker. */
  get worker(): Worker {
    return this.routerLane().worker;
  }

  /** Every running lane's BullMQ worker (shutdown cancels their jobs). */
  workers(): Worker[] {
    return [...this.lanes.values()].map((l) => l.worker);
  }

  private routerLane(): LaneRuntime {
    const lane = this.lanes.get(ROUTER_LANE);
    if (!lane) throw new Error(`account ${this.account.id}: the router lane is not running`);
    return lane;
  }

  /** Jobs this process is running for the account now (for the heartbeat). */
  get inFlight(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.inFlight;
    return n;
  }

  static async start(account: AccountConfig, options: RuntimeOptions): Promise<AccountRuntime> {
    const routes = await RouteSelection.create(account, options.upstream);
    const runtime = new AccountRuntime(account, routes, options);
    // Before the first job: producers choose lanes and index endpoint jobs from this.
    await publishEndpoints(options.redis, options.prefix, account.id, account.endpoints ?? []);
    await runtime.startLane(ROUTER_LANE);
    // Every lane with an enqueue on record: its jobs may be waiting for a worker.
    await runtime.startRegisteredLanes();
    await runtime.batches.start();
    runtime.startBatchRoute();
    return runtime;
  }

  /** The batch route's rounds, on their own timer: a slow upload never delays a hold's lift. */
  private startBatchRoute(): void {
    const stores = this.ctx.batchRoute;
    if (!stores) return;
    this.batchRoute = new BatchRouteRuntime({
      ctx: this.laneContext(ROUTER_LANE, this.queue),
      redis: this.options.redis,
      prefix: this.options.prefix,
      queues: () => [...this.lanes.values()].map((lane) => lane.queue),
      stores,
      roundMs: BATCH_ROUND_MS,
    });
    const route = this.batchRoute;
    this.batchTimer = setInterval(() => {
      if (this.closing || this.batchRound) return;
      this.batchRound = route
        .round()
        .catch((err: Error) =>
          this.options.logger.warn(
            { account: this.account.id, err: err.message },
            'batch route round failed; next round tries again',
          ),
        )
        .finally(() => {
          this.batchRound = undefined;
        });
    }, BATCH_ROUND_MS);
    this.batchTimer.unref();
  }

  /** A producer announced a lane (lane-announcements.ts): start it now if it is not running. */
  async startAnnouncedLane(lane: LaneId): Promise<void> {
    if (this.closing || this.lanes.has(lane)) return;
    await this.startLane(lane);
  }

  /** Start a lane's queue and worker here (once), its BullMQ limiter first. */
  private startLane(lane: LaneId): Promise<LaneRuntime | undefined> {
    const running = this.lanes.get(lane);
    if (running) return Promise.resolve(running);
    let starting = this.starting.get(lane);
    if (!starting) {
      const { options } = this;
      starting = LaneRuntime.start({
        accountId: this.account.id,
        lane,
        prefix: options.prefix,
        redis: options.queueRedis,
        concurrency: options.concurrency,
        lockDurationMs: options.lockDurationMs,
        stalledIntervalMs: options.stalledIntervalMs,
        maxStalledCount: options.maxStalledCount,
        telemetry: options.telemetry,
        redisErrors: options.redisErrors,
        logger: options.logger,
        process: (l, job, token, signal) => this.process(l, job, token, signal),
      })
        .then(async (runtime) => {
          if (this.closing) {
            await runtime.close();
            return undefined;
          }
          this.lanes.set(lane, runtime);
          await this.queueLimits.sync(lane, runtime.queue);
          if (lane !== ROUTER_LANE) options.logger.info({ account: this.account.id, lane }, 'lane started');
          return runtime;
        })
        .finally(() => this.starting.delete(lane));
      this.starting.set(lane, starting);
    }
    return starting;
  }

  /**
   * Lanes in the registry that are not running here and had an enqueue since this process last
   * closed them (the registry's time is at most `LANE_RECORD_MS` older than the enqueue).
   */
  private async startRegisteredLanes(): Promise<void> {
    const lanes = await readLanes(this.options.redis, this.options.prefix, this.account.id);
    const sinceStartMs = Date.now() - performance.now();
    for (const [lane, atMs] of lanes) {
      if (this.lanes.has(lane)) continue;
      const closed = this.closedAt.get(lane);
      if (closed !== undefined && atMs < sinceStartMs + closed - 10_000) continue;
      await this.startLane(lane);
    }
  }

  /** Close lanes (not the router's) idle here for `laneIdleMs` whose queue holds nothing unfinished. */
  private async closeIdleLanes(): Promise<void> {
    const idleMs = this.options.laneIdleMs ?? LANE_IDLE_MS;
    for (const [lane, runtime] of this.lanes) {
      if (lane === ROUTER_LANE || runtime.idleMs() < idleMs) continue;
      if (await runtime.hasWork()) continue;
      this.lanes.delete(lane);
      this.queueLimits.forget(lane);
      this.closedAt.set(lane, performance.now());
      await runtime.close();
      this.options.logger.info({ account: this.account.id, lane }, 'lane closed: idle');
    }
  }

  private holdTarget(lane: LaneId) {
    const runtime = this.lanes.get(lane);
    if (!runtime) return undefined;
    return {
      redis: this.options.redis,
      prefix: this.options.prefix,
      queue: runtime.queue,
      accountId: this.account.id,
      lane,
    };
  }

  /**
   * The start limit of a lane's coarse BullMQ limiter, from its domain's limit or an operator's
   * override: never below the configured limit, so an override that lapses leaves no cap behind.
   */
  private async queueStartLimitOf(lane: LaneId): Promise<{ max: number; durationMs: number }> {
    const domain = this.routes.routerDomainFor(laneProvider(lane));
    const primary = primaryWindow(domain.windows) ?? { max: 1000, durationMs: 1000 };
    const { override } = await this.options.limiter.state(domain.id);
    const max = queueStartLimit(
      this.account,
      Math.max(override ?? primary.max, primary.max),
      primary.durationMs,
    );
    return { max, durationMs: primary.durationMs };
  }

  /** Pause a lane's queue (the router lane by default; every worker, every machine): nothing fails, nothing is lost. */
  async hold(reason: string, hooks?: HoldHooks, lane: LaneId = ROUTER_LANE): Promise<void> {
    const { logger } = this.options;
    const target = this.holdTarget(lane);
    if (!target) return;
    await holdAccount(target, reason, hooks);
    if (this.lastHoldReason.get(lane) !== reason) {
      this.options.events.emit('hold', { account: this.account.id, lane, held: true, reason });
      this.lastHoldReason.set(lane, reason);
      logger.error(
        { account: this.account.id, lane, reason },
        "lane held: its queue is paused until the cause clears (the account's other lanes go on)",
      );
    }
  }

  /** One supervisor round (one at a time): start and close lanes, lift holds whose cause cleared. */
  supervise(): Promise<void> {
    this.supervising ??= this.superviseOnce().finally(() => {
      this.supervising = undefined;
    });
    return this.supervising;
  }

  private async superviseOnce(): Promise<void> {
    if (this.closing) return;
    // Producers announce new lanes (lane-announcements.ts): the registry is the fallback for a
    // missed announcement, read every few rounds so that idle accounts cost no more than before.
    if (this.rounds++ % REGISTRY_EVERY_ROUNDS === 0) await this.startRegisteredLanes();
    await this.closeIdleLanes();
    for (const runtime of [...this.lanes.values()]) {
      await this.queueLimits.sync(runtime.lane, runtime.queue);
      if (await this.liftHoldIfClear(runtime.lane)) continue;
      const target = this.holdTarget(runtime.lane);
      if (target && (await resumeIfPausedWithoutReason(target))) {
        this.options.logger.warn(
          { account: this.account.id, lane: runtime.lane },
          'queue was paused with no hold reason: resumed (a cause that still holds will hold it again)',
        );
      }
    }
  }

  /** Resume a lane hfq paused once one of its jobs' routes can take work again. */
  async liftHoldIfClear(lane: LaneId = ROUTER_LANE): Promise<boolean> {
    const { now, logger } = this.options;
    const target = this.holdTarget(lane);
    if (!target) return false;
    if (!(await releaseHold(target, () => laneHasRoute(this, lane, now())))) return false;
    this.lastHoldReason.delete(lane);
    this.options.events.emit('hold', { account: this.account.id, lane, held: false });
    logger.info(
      { account: this.account.id, lane, scope: creditScope(this.account) },
      'hold lifted: lane resumed',
    );
    return true;
  }

  /** Stop taking jobs and wait for the active ones (graceful), then stop the supervisor. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.supervisor);
    clearInterval(this.batchTimer);
    await this.batchRound;
    this.lifecycle?.close();
    await this.supervising?.catch(() => {});
    await Promise.allSettled([...this.starting.values()]);
    await Promise.all([...this.lanes.values()].map((lane) => lane.worker.close()));
    for (const endpoint of this.endpoints) endpoint.close();
    await this.lifecycle?.idle();
    await this.batches.close();
    await Promise.all([...this.lanes.values()].map((lane) => lane.queue.close()));
  }
}
