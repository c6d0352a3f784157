import { randomBytes } from 'node:crypto';
import {
  BATCH_FIELDS,
  BATCH_ID,
  type BatchJobData,
  batchQueueName,
  batchStateKey,
  DEFAULT_RETENTION,
  JOB_SCHEMA_VERSION,
  LIMITS,
  ValidationError,
  whenReady,
} from '@hfq/shared';
import { FlowProducer, PRIORITY_LIMIT, Queue } from 'bullmq';
import type { Redis, RedisOptions } from 'ioredis';
import { Feeder, sealJobId } from './batch-feed.js';
import { Batch } from './batch-handle.js';
import { type BatchBase, COALESCING_TASKS, itemJob, validateBase } from './batch-items.js';
import { ChildWatcher } from './batch-results.js';

/**
 * Batches (issue 6, design decision 9): one BullMQ flow per batch. The parent job lives in the
 * account's batch queue (`batch-<account>`, run by a light processor in every worker) and waits
 * on its children in the account queue, one child per upstream request, plus a seal child that
 * keeps it open until every item is added. Children fail alone (`ignoreDependencyOnFailure`), run
 * at a lower priority than single jobs, and are read back in input order (`batch-results.ts`).
 */

/** Default priority of batch children. Single jobs without a priority run before any of them. */
export const DEFAULT_BATCH_PRIORITY = 1_000;

export interface BatchSpec extends BatchBase {
  /** The items (one per task input, see `batch-items.ts`): an array, an iterable or an async iterable, read once. */
  items: Iterable<unknown> | AsyncIterable<unknown>;
  /**
   * Items per upstream request, for tasks whose API takes arrays (`feature-extraction`, `sentence-similarity`).
   * @defaultValue 1
   */
  coalesce?: number;
}

export interface BatchOptions {
  /**
   * The batch's id (also its parent job's). An id that exists attaches to that batch and adds nothing.
   * @defaultValue generated
   */
  batchId?: string;
  /** BullMQ priority of the children (1 is highest). @defaultValue `DEFAULT_BATCH_PRIORITY` (1000) */
  priority?: number;
  /** Items read from the input per round trip to Redis. @defaultValue 1000 */
  chunkSize?: number;
  /** A slow input's items are added after waiting this long for the next one, ms. @defaultValue 50 */
  flushMs?: number;
  /**
   * If this producer stops before adding every item, the batch completes with what it has after this long, ms.
   * @defaultValue 600000
   */
  sealTimeoutMs?: number;
}

export interface BatchClientDeps {
  /** The producer's connection (not blocking; shared by the batch queues and the flow producer). */
  connection: Redis;
  connectionOptions: RedisOptions;
  prefix: string;
  /** The producer's account queues. */
  queue(account: string): Queue;
}

/** A producer's batches: their flow producer, batch queues and child watchers. */
export class BatchClient {
  private flow: FlowProducer | undefined;
  private readonly batchQueues = new Map<string, Queue>();
  private readonly watchers = new Map<string, ChildWatcher>();
  private readonly feeds = new Set<Promise<unknown>>();

  constructor(private readonly deps: BatchClientDeps) {}

  /** Validate, create the batch (parent and seal), and start adding its items. */
  async enqueue(spec: BatchSpec, options: BatchOptions = {}): Promise<Batch> {
    const settings = checkOptions(spec, options);
    validateBase(spec);
    const prevalidated = Array.isArray(spec.items);
    // An array is validated whole first: nothing reaches Redis if one item is invalid.
    if (prevalidated) {
      (spec.items as unknown[]).forEach((item, index) => {
        itemJob(spec, item, index);
      });
    }
    const { connection: redis, prefix } = this.deps;
    await whenReady(redis);
    const batchId = options.batchId ?? newBatchId();
    const stateKey = batchStateKey(prefix, batchId);
    if ((await redis.hsetnx(stateKey, BATCH_FIELDS.account, spec.account)) === 0) return this.open(batchId);
    const batchQueue = this.batchQueue(spec.account);
    try {
      await redis.hset(
        stateKey,
        BATCH_FIELDS.total,
        0,
        BATCH_FIELDS.ok,
        0,
        BATCH_FIELDS.failed,
        0,
        'task',
        spec.task,
      );
      const parentData: BatchJobData = {
        v: JOB_SCHEMA_VERSION,
        kind: 'batch',
        account: spec.account,
        task: spec.task,
        model: spec.model,
        coalesce: settings.coalesce,
      };
      const sealData: BatchJobData = { v: JOB_SCHEMA_VERSION, kind: 'seal', batchId };
      await this.flowProducer().add({
        name: 'batch',
        queueName: batchQueue.name,
        data: parentData,
        opts: {
          jobId: batchId,
          removeOnComplete: { ...DEFAULT_RETENTION.removeOnComplete },
          removeOnFail: { ...DEFAULT_RETENTION.removeOnFail },
        },
        children: [
          {
            name: 'seal',
            queueName: batchQueue.name,
            data: sealData,
            opts: {
              jobId: sealJobId(batchId),
              delay: settings.sealTimeoutMs,
              attempts: 5,
              backoff: { type: 'exponential', delay: 1_000 },
              removeOnComplete: true,
              removeOnFail: true,
            },
          },
        ],
      });
    } catch (err) {
      await redis.del(stateKey).catch(() => {});
      throw err;
    }
    const feeder = new Feeder(
      {
        batchId,
        prefix,
        redis,
        queue: this.deps.queue(spec.account),
        batchQueue,
        base: {
          account: spec.account,
          task: spec.task,
          model: spec.model,
          provider: spec.provider,
          parameters: spec.parameters,
        },
        prevalidated,
        ...settings,
      },
      spec.items,
    );
    return new Batch(this, batchId, spec.account, feeder);
  }

  /** A handle on an existing batch (enqueued by this or another process). */
  async open(batchId: string): Promise<Batch> {
    await whenReady(this.deps.connection);
    const account = await this.deps.connection.hget(
      batchStateKey(this.deps.prefix, batchId),
      BATCH_FIELDS.account,
    );
    if (account === null) throw new Error(`no batch ${batchId} in Redis (never enqueued, or expired)`);
    return new Batch(this, batchId, account, undefined);
  }

  /** Track a feed so `close()` waits for it. */
  track(feed: Promise<unknown>): void {
    this.feeds.add(feed);
    void feed.finally(() => this.feeds.delete(feed)).catch(() => {});
  }

  /** Wait until every batch's input is added, then close the batch queues, watchers and flow producer. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.feeds]);
    await Promise.all([...this.watchers.values()].map((w) => w.close()));
    await this.flow?.close();
    await Promise.all([...this.batchQueues.values()].map((q) => q.close()));
  }

  /** @internal */
  context(account: string) {
    return {
      redis: this.deps.connection,
      prefix: this.deps.prefix,
      queue: this.deps.queue(account),
      batchQueue: this.batchQueue(account),
      watcher: this.watcher(account),
    };
  }

  private batchQueue(account: string): Queue {
    let queue = this.batchQueues.get(account);
    if (!queue) {
      queue = new Queue(batchQueueName(account), {
        connection: this.deps.connection,
        prefix: this.deps.prefix,
      });
      queue.on('error', () => {});
      this.batchQueues.set(account, queue);
    }
    return queue;
  }

  private watcher(account: string): ChildWatcher {
    let watcher = this.watchers.get(account);
    if (!watcher) {
      const connection = {
        ...this.deps.connectionOptions,
        connectionName: `${this.deps.prefix}:hfq-batch-events`,
      };
      watcher = new ChildWatcher(this.deps.queue(account).name, connection, this.deps.prefix);
      this.watchers.set(account, watcher);
    }
    return watcher;
  }

  private flowProducer(): FlowProducer {
    if (!this.flow) {
      this.flow = new FlowProducer({ connection: this.deps.connection, prefix: this.deps.prefix });
      this.flow.on('error', () => {});
    }
    return this.flow;
  }
}

function checkOptions(spec: BatchSpec, options: BatchOptions) {
  const issues: { path: string; message: string }[] = [];
  const whole = (
    value: number | undefined,
    path: string,
    min: number,
    max: number,
    fallback: number,
  ): number => {
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || value < min || value > max)
      issues.push({ path, message: `a whole number from ${min} to ${max}` });
    return value;
  };
  const settings = {
    coalesce: whole(spec.coalesce, 'coalesce', 1, LIMITS.MAX_INPUT_ITEMS, 1),
    priority: whole(options.priority, 'priority', 1, PRIORITY_LIMIT, DEFAULT_BATCH_PRIORITY),
    chunkSize: whole(options.chunkSize, 'chunkSize', 1, 10_000, 1_000),
    flushMs: whole(options.flushMs, 'flushMs', 0, 60_000, 50),
    sealTimeoutMs: whole(options.sealTimeoutMs, 'sealTimeoutMs', 1_000, 7 * 24 * 3600_000, 600_000),
  };
  if (settings.coalesce > 1 && !COALESCING_TASKS.includes(spec.task)) {
    issues.push({
      path: 'coalesce',
      message: `only ${COALESCING_TASKS.join(' and ')} take several inputs per request`,
    });
  }
  if (options.batchId !== undefined && !BATCH_ID.safeParse(options.batchId).success) {
    issues.push({
      path: 'batchId',
      message: 'letters, digits, "_", "." or "-" (not only digits), at most 64 characters',
    });
  }
  const items = spec.items as unknown;
  if (
    items === null ||
    typeof items !== 'object' ||
    !(Symbol.iterator in (items as object) || Symbol.asyncIterator in (items as object))
  ) {
    issues.push({ path: 'items', message: 'an array, an iterable or an async iterable' });
  }
  if (issues.length > 0) throw new ValidationError('batch', issues);
  return settings;
}

function newBatchId(): string {
  return `b${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
}
