import type { Logger } from '@hfq/shared';
import {
  isRedisOutOfMemory,
  type LaneId,
  laneQueueName,
  type RedisClient,
  type RedisErrorLog,
} from '@hfq/shared/internal';
import { type Job as BullJob, Queue, type Telemetry, Worker } from 'bullmq';
import { logJobOutcomes } from './job-outcome-log.js';

/**
 * One lane of an account in this process (see docs/architecture.md, "Every route its own lane"):
 * its BullMQ queue and worker. The worker's regular commands go over the process's shared
 * (non-blocking) client, so a lane adds one connection, its blocking one. Lanes other than the
 * router's are started when the lane registry shows them and closed once idle (account-runtime.ts).
 */

export interface LaneRuntimeOptions {
  accountId: string;
  lane: LaneId;
  prefix: string;
  /** The process's shared client: the queue's and the worker's regular commands. */
  redis: RedisClient;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
  telemetry?: Telemetry | undefined;
  redisErrors: RedisErrorLog;
  logger: Logger;
  /** Runs one job of this lane. */
  process: (
    lane: LaneRuntime,
    job: BullJob,
    token: string | undefined,
    signal: AbortSignal | undefined,
  ) => Promise<unknown>;
}

/** Job states that keep a lane open: anything not finished (paused lanes keep their jobs in wait). */
const UNFINISHED = ['wait', 'prioritized', 'delayed', 'active', 'waiting-children'] as const;

/**
 * How long an idle lane's worker blocks on its queue's marker before it looks again (BullMQ's
 * `drainDelay`, default 5 s). A new job, a due delayed job or a resume wakes it at once (each
 * writes the marker), so this only sets the idle cost: one wake is a `BZPOPMIN` and a
 * `moveToActive` of 7 commands. 10 s is the longest BullMQ blocks for (its `maximumBlockTimeout`,
 * kept short for reconnections) and halves what every idle lane and batch queue costs.
 */
export const IDLE_BLOCK_SECONDS = 10;

export class LaneRuntime {
  readonly queue: Queue;
  readonly worker: Worker;
  private running = 0;
  private lastBusyAt = performance.now();

  private constructor(private readonly options: LaneRuntimeOptions) {
    const { accountId, lane, prefix, redis, redisErrors } = options;
    const name = laneQueueName(accountId, lane);
    const where = lane === 'router' ? accountId : `${accountId} ${lane}`;
    this.queue = new Queue(name, { connection: redis, prefix });
    this.queue.on('error', redisErrors.listener(`queue ${where}`));
    this.worker = new Worker(
      name,
      async (job, token, signal) => {
        this.running += 1;
        try {
          return await options.process(this, job, token, signal);
        } finally {
          this.running -= 1;
          this.lastBusyAt = performance.now();
        }
      },
      {
        // The shared client for regular commands; BullMQ duplicates it for the blocking one.
        connection: redis,
        prefix,
        concurrency: options.concurrency,
        autorun: false,
        drainDelay: IDLE_BLOCK_SECONDS,
        lockDuration: options.lockDurationMs,
        stalledInterval: options.stalledIntervalMs,
        maxStalledCount: options.maxStalledCount,
        ...(options.telemetry ? { telemetry: options.telemetry } : {}),
      },
    );
    this.worker.on(
      'error',
      redisErrors.listener(`worker ${where}`, (err) =>
        isRedisOutOfMemory(err)
          ? {
              level: 'error',
              msg: 'Redis is full (maxmemory reached, writes refused): no job can move until memory is freed or maxmemory raised; retrying',
            }
          : { level: 'error', msg: 'worker error' },
      ),
    );
    logJobOutcomes(this.worker, options.logger, accountId);
  }

  static async start(options: LaneRuntimeOptions): Promise<LaneRuntime> {
    const lane = new LaneRuntime(options);
    void lane.worker
      .run()
      .catch((err: Error) =>
        options.logger.error(
          { account: options.accountId, lane: options.lane, err: err.message },
          'worker stopped',
        ),
      );
    await lane.worker.waitUntilReady();
    return lane;
  }

  get lane(): LaneId {
    return this.options.lane;
  }

  /** Jobs this process runs in the lane now. */
  get inFlight(): number {
    return this.running;
  }

  /** How long no job of the lane has run in this process (0 while one runs). */
  idleMs(): number {
    return this.running > 0 ? 0 : performance.now() - this.lastBusyAt;
  }

  /** Whether the lane's queue holds a job not finished (waiting, held, delayed, running anywhere). */
  async hasWork(): Promise<boolean> {
    const counts = await this.queue.getJobCounts(...UNFINISHED);
    return Object.values(counts).some((n) => n > 0);
  }

  /** Stop taking jobs, wait for the running ones, close the queue. */
  async close(): Promise<void> {
    await this.worker.close();
    await this.queue.close();
  }
}
