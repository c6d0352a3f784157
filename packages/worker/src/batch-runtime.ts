import { DEFAULT_RETENTION, type Logger, ValidationError } from '@hfq/shared';
import {
  BATCH_CHILD,
  BATCH_FIELDS,
  BATCH_JOB_DATA,
  type BatchChild,
  type BatchParentProgress,
  batchQueueName,
  batchStateKey,
  COUNT_BATCH_CHILD,
  parentProgress,
  parseOrThrow,
  type RedisClient,
  type RedisErrorLog,
  splitHalvesOf,
} from '@hfq/shared/internal';
import {
  type Job as BullJob,
  DelayedError,
  Queue,
  RateLimitError,
  UnrecoverableError,
  WaitingChildrenError,
  Worker,
} from 'bullmq';
import type { RedisOptions } from 'ioredis';
import { IDLE_BLOCK_SECONDS } from './lane-runtime.js';

/**
 * The worker's part of batches (see docs/architecture.md, "Batches are flows"), for one account:
 * - the `batch-<account>` queue's light processor: the seal job (the producer promotes it once
 *   every item is added; if the producer dies first, its delay runs out and the batch is marked
 *   abandoned), and the parent job, which runs once every child finished either way and writes
 *   the batch's final counts;
 * - per-item accounting of the account queue's batch children (`track`): each child's items are
 *   counted once, ok or failed, before BullMQ records the child as finished, so the parent always
 *   sees final counts; progress is written to the parent job (Bull Board shows it) at most every
 *   `progressEveryMs`.
 */

/** What a batch parent returns when it completes. */
export interface BatchSummary {
  batchId: string;
  total: number;
  ok: number;
  failed: number;
  cancelled: number;
  /** `abandoned` when the producer stopped before adding every item. */
  sealed: 'sealed' | 'abandoned';
  /** Children that failed for good (BullMQ's ignored failures: `ignoreDependencyOnFailure`). */
  childrenFailed: number;
}

export interface BatchRuntimeOptions {
  account: string;
  prefix: string;
  /** hfq's state connection (shared, not blocking). */
  redis: RedisClient;
  connectionOptions: RedisOptions | RedisClient;
  /** The client of the batch queue's BullMQ worker (its regular commands; see account-runtime.ts). */
  queueRedis?: RedisClient;
  logger: Logger;
  /** Where Redis errors of the batch queue and worker are logged, once per condition. */
  redisErrors: RedisErrorLog;
  /** Batch parent and seal jobs run at once. @defaultValue 4 */
  concurrency?: number;
  /** Least time between two progress writes on one parent, ms. @defaultValue 250 */
  progressEveryMs?: number;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
}

export class BatchRuntime {
  readonly queue: Queue;
  readonly worker: Worker;
  private readonly pending = new Map<string, { value: BatchParentProgress; timer: NodeJS.Timeout }>();

  constructor(private readonly options: BatchRuntimeOptions) {
    const name = batchQueueName(options.account);
    // BullMQ's client, never the state connection: a Queue defines BullMQ's 63 scripts on its
    // client, and the auto-pipelined state connection would copy them onto every pipeline.
    this.queue = new Queue(name, { connection: options.queueRedis ?? options.redis, prefix: options.prefix });
    this.queue.on('error', options.redisErrors.listener(`batch queue ${options.account}`));
    this.worker = new Worker(name, (job) => this.process(job), {
      // The shared client for regular commands (BullMQ duplicates it for the blocking one): one
      // connection per account for batches, as for each lane (lane-runtime.ts).
      connection: options.queueRedis ?? options.redis,
      prefix: options.prefix,
      concurrency: options.concurrency ?? 4,
      autorun: false,
      drainDelay: IDLE_BLOCK_SECONDS,
      ...(options.lockDurationMs !== undefined ? { lockDuration: options.lockDurationMs } : {}),
      ...(options.stalledIntervalMs !== undefined ? { stalledInterval: options.stalledIntervalMs } : {}),
    });
    this.worker.on('error', options.redisErrors.listener(`batch worker ${options.account}`));
  }

  async start(): Promise<void> {
    void this.worker
      .run()
      .catch((err: Error) => this.options.logger.error({ err: err.message }, 'batch worker stopped'));
    await this.worker.waitUntilReady();
  }

  /**
   * Run one job of the account queue. For a batch child, its items are counted on the batch when
   * it completes, or when it fails for good (not when it is re-queued or will be retried).
   */
  async track<T>(job: BullJob, run: () => Promise<T>): Promise<T> {
    const batch = batchOf(job.data);
    if (!batch || job.id === undefined) return run();
    let result: T;
    try {
      result = await run();
    } catch (err) {
      if (isFinalFailure(job, err)) await this.count(batch, job.id, 'failed');
      throw err;
    }
    // A child that split itself counts nothing: its halves will.
    if (splitHalvesOf(result) === undefined) await this.count(batch, job.id, 'ok');
    return result;
  }

  /** Stop taking batch jobs and write the progress still pending. */
  async close(): Promise<void> {
    await this.worker.close();
    await Promise.all([...this.pending.keys()].map((batchId) => this.flushProgress(batchId)));
    await this.queue.close();
  }

  private async count(batch: BatchChild, jobId: string, field: 'ok' | 'failed'): Promise<void> {
    const { prefix, logger, account } = this.options;
    try {
      const counters = await COUNT_BATCH_CHILD.run<(string | null)[] | null>(
        this.options.redis,
        [batchStateKey(prefix, account, batch.id), batchStateKey(prefix, account, batch.id, 'counted')],
        [jobId, field === 'ok' ? BATCH_FIELDS.ok : BATCH_FIELDS.failed, batch.count],
      );
      if (!counters) return;
      const [total, ok, failed, sealed] = counters;
      this.scheduleProgress(
        batch.id,
        parentProgress({
          total: num(total),
          ok: num(ok),
          failed: num(failed),
          cancelled: 0,
          sealed: sealed != null,
        }),
      );
    } catch (err) {
      // Counting is bookkeeping: the child's own outcome stands; the parent reconciles at the end.
      logger.warn(
        { account, batchId: batch.id, jobId, err: (err as Error).message },
        'batch progress not counted',
      );
    }
  }

  private scheduleProgress(batchId: string, value: BatchParentProgress): void {
    const entry = this.pending.get(batchId);
    if (entry) {
      entry.value = value;
      return;
    }
    const timer = setTimeout(() => void this.flushProgress(batchId), this.options.progressEveryMs ?? 250);
    timer.unref();
    this.pending.set(batchId, { value, timer });
  }

  private async flushProgress(batchId: string): Promise<void> {
    const entry = this.pending.get(batchId);
    if (!entry) return;
    this.pending.delete(batchId);
    clearTimeout(entry.timer);
    // The parent may be gone (finished and removed): progress is then moot.
    await this.queue.updateJobProgress(batchId, { ...entry.value }).catch(() => {});
  }

  private async process(job: BullJob): Promise<unknown> {
    let data: ReturnType<typeof BATCH_JOB_DATA.parse>;
    try {
      data = parseOrThrow(BATCH_JOB_DATA, job.data, 'batch job data');
    } catch (err) {
      if (err instanceof ValidationError) throw new UnrecoverableError(err.message.slice(0, 2000));
      throw err;
    }
    if (data.kind === 'seal') return this.seal(data.batchId);
    return this.finish(job);
  }

  /** The seal ran: promoted by the producer once sealed, or its delay ran out (the producer stopped). */
  private async seal(batchId: string): Promise<{ sealed: 'sealed' | 'abandoned' }> {
    const abandoned = await this.options.redis.hsetnx(
      batchStateKey(this.options.prefix, this.options.account, batchId),
      BATCH_FIELDS.sealed,
      'abandoned',
    );
    if (abandoned === 1) {
      this.options.logger.warn(
        { account: this.options.account, batchId },
        'batch abandoned: its producer stopped before adding every item; it completes with the items it has',
      );
      return { sealed: 'abandoned' };
    }
    return { sealed: 'sealed' };
  }

  /** Every child finished (or was cancelled): write the final counts, let the batch state expire. */
  private async finish(job: BullJob): Promise<BatchSummary> {
    const batchId = job.id as string;
    const { prefix, redis, account } = this.options;
    const key = batchStateKey(prefix, account, batchId);
    const [total, ok, failed, sealed, cancelRequested] = await redis.hmget(
      key,
      BATCH_FIELDS.total,
      BATCH_FIELDS.ok,
      BATCH_FIELDS.failed,
      BATCH_FIELDS.sealed,
      BATCH_FIELDS.cancelRequested,
    );
    const counts = { total: num(total), ok: num(ok), failed: num(failed), cancelled: 0 };
    // Items neither ok nor failed were cancelled, or (never cancelled) belonged to a child that
    // failed without passing through a processor (it stalled too often): those failed.
    const rest = Math.max(0, counts.total - counts.ok - counts.failed);
    if (cancelRequested === '1') counts.cancelled = rest;
    else counts.failed += rest;
    const age = DEFAULT_RETENTION.removeOnComplete.age;
    await redis
      .multi()
      .hset(
        key,
        BATCH_FIELDS.failed,
        counts.failed,
        BATCH_FIELDS.cancelled,
        counts.cancelled,
        BATCH_FIELDS.finished,
        '1',
      )
      .expire(key, age)
      .expire(batchStateKey(prefix, account, batchId, 'layout'), age)
      .expire(batchStateKey(prefix, account, batchId, 'counted'), age)
      .exec();
    const pending = this.pending.get(batchId);
    if (pending) {
      clearTimeout(pending.timer);
      this.pending.delete(batchId);
    }
    await job.updateProgress(parentProgress({ ...counts, sealed: true }));
    const children = await job.getDependenciesCount({ ignored: true });
    this.options.logger.info({ account: this.options.account, batchId, ...counts }, 'batch finished');
    return {
      batchId,
      ...counts,
      sealed: sealed === 'abandoned' ? 'abandoned' : 'sealed',
      childrenFailed: children.ignored ?? 0,
    };
  }
}

function num(value: string | null | undefined): number {
  const n = Number(value ?? 0);
  return Number.isFinite(n) ? n : 0;
}

function batchOf(data: unknown): BatchChild | undefined {
  const raw = (data as { batch?: unknown } | null)?.batch;
  if (raw === undefined) return undefined;
  const parsed = BATCH_CHILD.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

/** A run that ends the job: not a re-queue, and no attempt left. */
function isFinalFailure(job: BullJob, err: unknown): boolean {
  if (err instanceof RateLimitError || err instanceof DelayedError || err instanceof WaitingChildrenError)
    return false;
  if ((err as Error | undefined)?.name === 'RateLimitError') return false;
  if (err instanceof UnrecoverableError) return true;
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}
