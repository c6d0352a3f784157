import { randomBytes } from 'node:crypto';
import { DEFAULT_RETENTION, LIMITS, ValidationError } from '@hfq/shared';
import {
  BATCH_FIELDS,
  BATCH_ID,
  type BatchJobData,
  batchAccountKey,
  batchQueueName,
  batchStateKey,
  blockingConnection,
  isLaneId,
  JOB_SCHEMA_VERSION,
  type LaneId,
  type RedisClient,
  ROUTER_LANE,
  whenReady,
} from '@hfq/shared/internal';
import { Job as BullJob, FlowProducer, PRIORITY_LIMIT, Queue } from 'bullmq';
import type { RedisOptions } from 'ioredis';
import { Feeder, sealJobId } from './batch-feed.js';
import { Batch, type BatchHost } from './batch-handle.js';
import { batchHooks } from './batch-hooks.js';
import { type BatchBase, COALESCING_TASKS, itemJob, validateBase } from './batch-items.js';
import { type BatchLease, takeLease, waitForLease } from './batch-lease.js';
import { BatchAbandonedError, ChildWatcher } from './batch-results.js';
import { readDueOptions } from './deadline-option.js';
import type { EndpointIndex } from './endpoint-index.js';

/**
 * Batches (see docs/architecture.md, "Batches are flows"): one BullMQ flow per batch. The parent job lives in the
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
   * The batch's id (also its parent job's). An id that exists is a retry: a complete batch is
   * returned as it is; one whose producer stopped before adding every item is taken over and its
   * missing items are added from `items` (the same input, read again from the start); an abandoned
   * one rejects with `BatchAbandonedError`.
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
  /**
   * When every item should be done by (as `EnqueueOptions.deadline`), carried in each child's data;
   * read once when the batch is enqueued, so a retry with a duration carries a new deadline for
   * the items it adds (give an ISO time to keep it). Does not yet change how items run.
   */
  deadline?: string | Date;
  /** With a `deadline`: `cost` or `speed`. @defaultValue `'cost'` */
  preference?: 'cost' | 'speed';
}

export interface BatchClientDeps {
  /** The producer's connection (not blocking; shared by the batch queues and the flow producer). */
  connection: RedisClient;
  /** What the child watchers' blocking connections are made from (see `blockingSourceFor`). */
  connectionOptions: RedisOptions | RedisClient;
  prefix: string;
  /** The producer's lane queues (the router lane when no lane is given). */
  queue(account: string, lane?: LaneId): Queue;
  /** The lane of a job of the account (see lanes.ts): a batch's children all go to its one lane. */
  lane(account: string, job: { task: string; model: string; provider?: string | undefined }): Promise<LaneId>;
  /** Record a lane in the account's lane registry, when this producer has not lately. */
  recordLane(account: string, lane: LaneId): Promise<void>;
  /** Where a batch whose model an Inference Endpoint serves is recorded as that endpoint's backlog. */
  endpointIndex: EndpointIndex;
}

/** A producer's batches: their flow producer, batch queues and child watchers. */
export class BatchClient implements BatchHost {
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
    const stateKey = batchStateKey(prefix, spec.account, batchId);
    await claimBatchId(redis, prefix, batchId, spec.account);
    // The lease first: creating and resuming a batch are both done by its one lease holder.
    const lease = await takeLease(redis, prefix, batchId);
    if (!lease || (await redis.hsetnx(stateKey, BATCH_FIELDS.account, spec.account)) === 0) {
      return this.resume(batchId, spec, settings, prevalidated, lease);
    }
    try {
      await this.create(batchId, spec, settings);
    } catch (err) {
      await redis.del(stateKey).catch(() => {});
      await lease.release().catch(() => {});
      throw err;
    }
    const lane = await this.laneOf(spec.account, batchId);
    // Before the first child: a lane the workers do not know yet is started from the registry.
    await this.deps.recordLane(spec.account, lane);
    return this.feed(batchId, spec, settings, prevalidated, lease, undefined, lane);
  }

  /** The lane of a batch's children, from its state (the router lane for a batch from before lanes). */
  async laneOf(account: string, batchId: string): Promise<LaneId> {
    const lane = await this.deps.connection.hget(
      batchStateKey(this.deps.prefix, account, batchId),
      BATCH_FIELDS.lane,
    );
    return lane && isLaneId(lane) ? lane : ROUTER_LANE;
  }

  /** The state hash's counters, then the flow: the parent job and its seal child. */
  private async create(batchId: string, spec: BatchSpec, settings: Settings): Promise<void> {
    const { connection: redis, prefix } = this.deps;
    const batchQueue = this.batchQueue(spec.account);
    // The lane of every child, fixed at creation: a resumed feed adds to the same queue.
    const lane = await this.deps.lane(spec.account, spec);
    await redis.hset(
      batchStateKey(prefix, spec.account, batchId),
      BATCH_FIELDS.lane,
      lane,
      BATCH_FIELDS.total,
      0,
      BATCH_FIELDS.ok,
      0,
      BATCH_FIELDS.failed,
      0,
      'task',
      spec.task,
    );
    await batchHooks.afterStateWritten?.(batchId);
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
    // The parent waits until its last child is done: one entry stands for the whole batch.
    await this.deps.endpointIndex
      .record(spec.account, [{ task: spec.task, model: spec.model, key: batchQueue.toKey(batchId) }])
      .catch(() => {});
  }

  /**
   * The batch id exists: a retry (a re-run of the same command, a producer that crashed). A
   * complete batch is returned as it is; an unsealed one is taken over (once its previous producer's
   * lease has lapsed) and its missing items are added from the same input; one that can no longer
   * take items (abandoned, or another batch under the same id) fails with the reason.
   */
  private async resume(
    batchId: string,
    spec: BatchSpec,
    settings: Settings,
    prevalidated: boolean,
    held: BatchLease | undefined,
  ): Promise<Batch> {
    const { connection: redis, prefix } = this.deps;
    const stateKey = batchStateKey(prefix, spec.account, batchId);
    const lease = held ?? (await waitForLease(redis, prefix, batchId));
    try {
      const [account, task, sealed, error, total] = await redis.hmget(
        stateKey,
        BATCH_FIELDS.account,
        'task',
        BATCH_FIELDS.sealed,
        BATCH_FIELDS.error,
        BATCH_FIELDS.total,
      );
      if (account === null)
        throw new Error(`batch ${batchId}: its state left Redis while it was being resumed`);
      if (account !== spec.account || (task !== null && task !== spec.task)) {
        throw new Error(
          `batch ${batchId} exists for account ${account}${task ? `, task ${task}` : ''}: a batch id names one batch`,
        );
      }
      if (sealed === 'abandoned') throw new BatchAbandonedError(batchId, Number(total ?? 0));
      if (sealed !== null || error !== null) {
        // Every item is in (or the input stopped): nothing to add; the handle reports which.
        await lease?.release();
        return new Batch(this, batchId, account, undefined);
      }
      if (!lease) throw new Error(`batch ${batchId}: another producer is adding its items right now`);
      const batchQueue = this.batchQueue(spec.account);
      if (!(await BullJob.fromId(batchQueue, batchId))) {
        // Created up to its state hash, not its flow (the producer stopped in between).
        await this.create(batchId, spec, settings);
      } else {
        const seal = await BullJob.fromId(batchQueue, sealJobId(batchId));
        if (!seal || !(await seal.isDelayed())) {
          // The seal ran (or runs): the parent may complete any moment, so nothing may be added.
          throw new BatchAbandonedError(batchId, Number(total ?? 0));
        }
        await seal.changeDelay(settings.sealTimeoutMs);
      }
      const [items, children] = await Promise.all([
        redis.hget(stateKey, BATCH_FIELDS.total),
        redis.llen(batchStateKey(prefix, spec.account, batchId, 'layout')),
      ]);
      const lane = await this.laneOf(spec.account, batchId);
      await this.deps.recordLane(spec.account, lane);
      return this.feed(
        batchId,
        spec,
        settings,
        prevalidated,
        lease,
        { items: Number(items ?? 0), children },
        lane,
      );
    } catch (err) {
      await lease?.release().catch(() => {});
      throw err;
    }
  }

  private feed(
    batchId: string,
    spec: BatchSpec,
    settings: Settings,
    prevalidated: boolean,
    lease: BatchLease,
    resume: { items: number; children: number } | undefined,
    lane: LaneId,
  ): Batch {
    const feeder = new Feeder(
      {
        batchId,
        account: spec.account,
        prefix: this.deps.prefix,
        redis: this.deps.connection,
        queue: this.deps.queue(spec.account, lane),
        batchQueue: this.batchQueue(spec.account),
        base: {
          account: spec.account,
          task: spec.task,
          model: spec.model,
          provider: spec.provider,
          parameters: spec.parameters,
        },
        prevalidated,
        ...settings,
        ...(resume ? { resume } : {}),
        lease,
      },
      spec.items,
    );
    return new Batch(this, batchId, spec.account, feeder);
  }

  /** A handle on an existing batch (enqueued by this or another process). */
  async open(batchId: string): Promise<Batch> {
    await whenReady(this.deps.connection);
    const account = await this.deps.connection.get(batchAccountKey(this.deps.prefix, batchId));
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
  context(account: string, lane: LaneId = ROUTER_LANE) {
    const queue = this.deps.queue(account, lane);
    return {
      redis: this.deps.connection,
      prefix: this.deps.prefix,
      queue,
      batchQueue: this.batchQueue(account),
      watcher: this.watcher(queue),
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

  /** The events reader of one lane queue (batch children finishing), made once. */
  private watcher(queue: Queue): ChildWatcher {
    let watcher = this.watchers.get(queue.name);
    if (!watcher) {
      const connection = blockingConnection(
        this.deps.connectionOptions,
        `${this.deps.prefix}:hfq-batch-events`,
      );
      watcher = new ChildWatcher(queue.name, connection, this.deps.prefix);
      this.watchers.set(queue.name, watcher);
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

type Settings = ReturnType<typeof checkOptions>;

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
  const due = readDueOptions(options, Date.now());
  if (!due.ok) issues.push({ path: due.path, message: due.message });
  if (issues.length > 0) throw new ValidationError('batch', issues);
  return { ...settings, due: due.ok ? due.due : {} };
}

function newBatchId(): string {
  return `b${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
}

/** A batch id's account pointer lives this long (longer than any batch state's retention). */
const BATCH_ACCOUNT_TTL_MS = 30 * 86_400_000;

/**
 * Records which account a batch id belongs to (for `producer.batch(id)`, and because the batch's
 * state is keyed by its account): a batch id names one batch, so reusing it for another account
 * is refused, as before.
 */
async function claimBatchId(
  redis: RedisClient,
  prefix: string,
  batchId: string,
  account: string,
): Promise<void> {
  const key = batchAccountKey(prefix, batchId);
  if ((await redis.set(key, account, 'PX', BATCH_ACCOUNT_TTL_MS, 'NX')) === 'OK') return;
  const owner = await redis.get(key);
  if (owner !== null && owner !== account) {
    throw new Error(`batch ${batchId} exists for account ${owner}: a batch id names one batch`);
  }
  await redis.pexpire(key, BATCH_ACCOUNT_TTL_MS);
}
