import { DEFAULT_ATTEMPTS, DEFAULT_BACKOFF, DEFAULT_RETENTION } from '@hfq/shared';
import {
  BATCH_FIELDS,
  batchStateKey,
  JOB_SCHEMA_VERSION,
  type JobData,
  type RedisClient,
} from '@hfq/shared/internal';
import { Job as BullJob, type JobsOptions, type Queue } from 'bullmq';
import { addAtomically } from './atomic-add.js';
import { batchHooks } from './batch-hooks.js';
import { type BatchBase, type ChildPlan, ChildPlanner, itemJob } from './batch-items.js';

/**
 * Adding a batch's items (see docs/architecture.md, "Batches are flows"): read the input once, a chunk at a time, so a stream of any
 * length keeps the producer's memory flat. Each chunk is one transaction: its child jobs (each with
 * the batch parent as `opts.parent`), their entries in the batch layout and the item count, so no
 * child exists that the layout (and so every reader) does not know of. A slow input does not
 * hold items back: after `flushMs` without a new item, what was read is added. The parent cannot
 * complete meanwhile: it also waits on its seal child, which the feeder keeps delayed (a heartbeat)
 * and promotes only after the last chunk. Children added after the parent became ready would be
 * orphaned (BullMQ), so nothing is added after the seal.
 */

export interface FeedContext {
  batchId: string;
  account: string;
  prefix: string;
  redis: RedisClient;
  /** The account queue (children). */
  queue: Queue;
  /** The account's batch queue (parent and seal). */
  batchQueue: Queue;
  base: BatchBase;
  coalesce: number;
  priority: number;
  chunkSize: number;
  flushMs: number;
  sealTimeoutMs: number;
  /** Every item was validated before the batch was created (array input). */
  prevalidated: boolean;
  /** The batch's `deadline` and `preference` as job data, for every child (empty without one). */
  due: Pick<JobData, 'dueAt' | 'preference'>;
  /**
   * Resuming a batch another producer started: items of the input already added (skipped), and
   * children already in the layout (the next child's sequence number).
   */
  resume?: { items: number; children: number };
  /** The feeder lease this feeder holds (see `batch-lease.ts`); released when the feed ends. */
  lease?: { refresh(): Promise<boolean>; release(): Promise<void> };
}

export interface FeedResult {
  /** Items read from the input (each has a result, `cancelled` if it was never added). */
  items: number;
  /** Child jobs added (and cancelled entries). */
  children: number;
}

/** How often a feeder refreshes its lease. */
const LEASE_REFRESH_MS = 2_000;

export function sealJobId(batchId: string): string {
  return `${batchId}-seal`;
}

export class Feeder {
  private cancelled = false;
  private detached = false;
  // Callbacks, not one long-lived promise: racing a promise that never settles leaks a reaction per race.
  private readonly onCancel = new Set<() => void>();
  private heartbeatError: Error | undefined;
  private seq: number;
  private items: number;

  constructor(
    private readonly ctx: FeedContext,
    private readonly input: Iterable<unknown> | AsyncIterable<unknown>,
  ) {
    this.seq = ctx.resume?.children ?? 0;
    this.items = ctx.resume?.items ?? 0;
  }

  /** Stop reading the input; what was read and not added becomes `cancelled`. */
  cancel(): void {
    this.cancelled = true;
    for (const wake of [...this.onCancel]) wake();
  }

  /**
   * Stop reading the input and leave the batch open, as a crash would but at once: what was read
   * and not added is dropped, the lease is released, and a retry with the same batch id adds the
   * rest (before the seal's timeout).
   */
  detach(): void {
    this.detached = true;
    for (const wake of [...this.onCancel]) wake();
  }

  async run(): Promise<FeedResult> {
    const { ctx } = this;
    const planner = new ChildPlanner(ctx.base.task, ctx.coalesce);
    // A synchronous input is read without awaiting each item, and never keeps items waiting:
    // only a stream needs the race with a cancel and the idle flush.
    const stream = Symbol.asyncIterator in this.input;
    const iterator = stream
      ? (this.input as AsyncIterable<unknown>)[Symbol.asyncIterator]()
      : (this.input as Iterable<unknown>)[Symbol.iterator]();
    let chunk: ChildPlan[] = [];
    let chunkItems = 0;
    let pending: Promise<IteratorResult<unknown>> | IteratorResult<unknown> | undefined;
    let exhausted = false;
    const beatMs = Math.max(250, Math.floor(ctx.sealTimeoutMs / 4));
    const heartbeat = setInterval(() => void this.beat(), beatMs);
    heartbeat.unref();
    const leaseBeat = setInterval(() => void this.keepLease(), LEASE_REFRESH_MS);
    leaseBeat.unref();
    // Resuming: the input's first items are in already.
    let skip = ctx.resume?.items ?? 0;
    const addChunk = async () => {
      const children = chunk;
      chunk = [];
      chunkItems = 0;
      await this.add(children);
      if (this.heartbeatError) throw this.heartbeatError;
      // Another process may have cancelled the batch.
      if (
        (await ctx.redis.hget(
          batchStateKey(ctx.prefix, ctx.account, ctx.batchId),
          BATCH_FIELDS.cancelRequested,
        )) === '1'
      ) {
        this.cancel();
      }
    };
    try {
      while (!this.cancelled && !this.detached) {
        if (!pending) {
          pending = iterator.next();
          // Left unawaited if a cancel wins the race: its failure must not go unhandled.
          if (pending instanceof Promise) pending.catch(() => {});
        }
        const open = chunk.length > 0 || planner.openItems > 0;
        const step =
          pending instanceof Promise ? await this.race(pending, open ? ctx.flushMs : undefined) : pending;
        if (step === 'cancel') break;
        if (this.detached) break;
        if (step === 'idle') {
          // The input is slow: add what was read so far and keep waiting for the same item.
          chunk.push(...planner.flush());
          await addChunk();
          continue;
        }
        pending = undefined;
        if (step.done) {
          exhausted = true;
          break;
        }
        if (skip > 0) {
          skip--;
          continue;
        }
        const job = itemJob(ctx.base, step.value, this.items, !ctx.prevalidated);
        for (const plan of planner.push(this.items, job)) {
          chunk.push(plan);
          chunkItems += plan.batch.count;
        }
        this.items++;
        if (chunkItems >= ctx.chunkSize) await addChunk();
      }
      if (this.detached && !this.cancelled) return { items: this.items, children: this.seq };
      if (this.cancelled) {
        await this.addCancelled([...chunk, ...planner.flush()]);
        return { items: this.items, children: this.seq };
      }
      chunk.push(...planner.flush());
      await addChunk();
      await this.seal();
      return { items: this.items, children: this.seq };
    } catch (err) {
      // The input failed (an invalid item, an iterator that threw): what was read and not added
      // is recorded as cancelled, the reason is kept for readers, and the caller cancels the rest.
      await this.addCancelled([...chunk, ...planner.flush()]).catch(() => {});
      await ctx.redis
        .hset(
          batchStateKey(ctx.prefix, ctx.account, ctx.batchId),
          BATCH_FIELDS.error,
          (err as Error).message.slice(0, 2000),
        )
        .catch(() => {});
      throw err;
    } finally {
      clearInterval(heartbeat);
      clearInterval(leaseBeat);
      await ctx.lease?.release().catch(() => {});
      if (!exhausted) void Promise.resolve(iterator.return?.()).catch(() => {});
    }
  }

  /** The next item, a cancel, or `idle` after `idleMs` (when given). */
  private race<T>(
    next: Promise<IteratorResult<T>>,
    idleMs: number | undefined,
  ): Promise<IteratorResult<T> | 'cancel' | 'idle'> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = () => {
        clearTimeout(timer);
        this.onCancel.delete(cancel);
      };
      const cancel = () => {
        settle();
        resolve('cancel');
      };
      this.onCancel.add(cancel);
      if (idleMs !== undefined) {
        timer = setTimeout(() => {
          settle();
          resolve('idle');
        }, idleMs);
      }
      next.then(
        (step) => {
          settle();
          resolve(step);
        },
        (err: unknown) => {
          settle();
          reject(err);
        },
      );
    });
  }

  /** One transaction: the children, their layout entries and the item count. */
  private async add(children: ChildPlan[]): Promise<void> {
    if (children.length === 0) return;
    const { ctx } = this;
    if (this.heartbeatError) throw this.heartbeatError;
    const opts = childOptions(ctx);
    const first = this.seq;
    const items = children.reduce((sum, c) => sum + c.batch.count, 0);
    await addAtomically(
      ctx.queue,
      children.map((plan, i) => ({
        name: plan.job.task,
        data: {
          v: JOB_SCHEMA_VERSION,
          job: plan.job,
          ...ctx.due,
          batch: { id: ctx.batchId, ...plan.batch },
        } satisfies JobData,
        opts: { ...opts, jobId: `${ctx.batchId}-${first + i}` },
      })),
      (multi) => {
        multi
          .rpush(
            batchStateKey(ctx.prefix, ctx.account, ctx.batchId, 'layout'),
            ...children.map((c) => String(c.batch.count)),
          )
          .hincrby(batchStateKey(ctx.prefix, ctx.account, ctx.batchId), BATCH_FIELDS.total, items);
      },
    );
    this.seq += children.length;
    await batchHooks.afterChunk?.(ctx.batchId, this.seq);
  }

  /** Keep the feeder lease; losing it (another producer took the batch over) stops this feed. */
  private async keepLease(): Promise<void> {
    if (!this.ctx.lease) return;
    const held = await this.ctx.lease.refresh().catch(() => true);
    if (!held)
      this.heartbeatError ??= new Error(`batch ${this.ctx.batchId}: another producer took over its input`);
  }

  /** Layout entries for items read but never added: no child exists for them, so they read as cancelled. */
  private async addCancelled(children: ChildPlan[]): Promise<void> {
    if (children.length > 0) await this.appendLayout(children);
  }

  private async appendLayout(children: ChildPlan[]): Promise<void> {
    const { ctx } = this;
    const items = children.reduce((sum, c) => sum + c.batch.count, 0);
    await ctx.redis
      .multi()
      .rpush(
        batchStateKey(ctx.prefix, ctx.account, ctx.batchId, 'layout'),
        ...children.map((c) => String(c.batch.count)),
      )
      .hincrby(batchStateKey(ctx.prefix, ctx.account, ctx.batchId), BATCH_FIELDS.total, items)
      .exec();
    this.seq += children.length;
  }

  /** Every item is in: mark the batch sealed, then let the seal child run so the parent can complete. */
  private async seal(): Promise<void> {
    const { ctx } = this;
    const first = await ctx.redis.hsetnx(
      batchStateKey(ctx.prefix, ctx.account, ctx.batchId),
      BATCH_FIELDS.sealed,
      '1',
    );
    if (first === 0) {
      const sealed = await ctx.redis.hget(
        batchStateKey(ctx.prefix, ctx.account, ctx.batchId),
        BATCH_FIELDS.sealed,
      );
      if (sealed === 'abandoned') throw abandonedError(ctx);
    }
    const seal = await BullJob.fromId(ctx.batchQueue, sealJobId(ctx.batchId));
    // Not delayed any more (cancelled, or already run): nothing to promote.
    await seal?.promote().catch(() => {});
  }

  /** Push the seal's deadline back while the input is still being read. */
  private async beat(): Promise<void> {
    const { ctx } = this;
    try {
      const seal = await BullJob.fromId(ctx.batchQueue, sealJobId(ctx.batchId));
      if (!seal) throw new Error('seal job missing');
      await seal.changeDelay(ctx.sealTimeoutMs);
    } catch (err) {
      const state = batchStateKey(ctx.prefix, ctx.account, ctx.batchId);
      const cancelled = (await ctx.redis.hget(state, BATCH_FIELDS.cancelRequested).catch(() => null)) === '1';
      if (cancelled) this.cancel();
      else this.heartbeatError ??= abandonedError(ctx, (err as Error).message);
    }
  }
}

function abandonedError(ctx: FeedContext, detail?: string): Error {
  return new Error(
    `batch ${ctx.batchId}: the seal ran before every item was added${detail ? ` (${detail})` : ''}; ` +
      'items added later would be orphaned, so the input stops here',
  );
}

/** Children: below single jobs in priority, a failure recorded on the parent without failing it, kept by age. */
function childOptions(ctx: FeedContext): JobsOptions {
  return {
    parent: { id: ctx.batchId, queue: ctx.batchQueue.qualifiedName },
    priority: ctx.priority,
    ignoreDependencyOnFailure: true,
    attempts: DEFAULT_ATTEMPTS,
    backoff: { ...DEFAULT_BACKOFF },
    // By age only: a count would let other jobs' completions trim children not read yet.
    removeOnComplete: { age: DEFAULT_RETENTION.removeOnComplete.age },
    removeOnFail: { age: DEFAULT_RETENTION.removeOnFail.age },
  };
}
