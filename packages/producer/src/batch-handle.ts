import { once } from 'node:events';
import type { BatchProgress } from '@hfq/shared';
import { BATCH_FIELDS, batchStateKey, itemsDone, type LaneId, type RedisClient } from '@hfq/shared/internal';
import { Job as BullJob, type Queue } from 'bullmq';
import type { Feeder, FeedResult } from './batch-feed.js';
import {
  BatchAbandonedError,
  type BatchItemResult,
  type ChildWatcher,
  type ReadOptions,
  readBatch,
} from './batch-results.js';

/**
 * The handle `enqueueBatch` returns (see docs/architecture.md, "Batches are flows"): when the input is in, progress, results in input
 * order (all at once, as a stream, or as JSONL), and cancellation.
 */

/** What a batch handle uses of the client that made it (`BatchClient`, batch.ts). */
export interface BatchHost {
  /** The account's connection, prefix, queues (the children's in `lane`) and child watcher. */
  context(
    account: string,
    lane?: LaneId,
  ): {
    redis: RedisClient;
    prefix: string;
    queue: Queue;
    batchQueue: Queue;
    watcher: ChildWatcher;
  };
  /** Keep a feed running until the client closes. */
  track(feed: Promise<unknown>): void;
  /** The lane of a batch's children (see lanes.ts). */
  laneOf(account: string, batchId: string): Promise<LaneId>;
}

/** A handle on one batch. */
export class Batch {
  private readonly feeding: Promise<FeedResult> | undefined;

  constructor(
    private readonly client: BatchHost,
    /** The batch's id, also the id of its parent job in the `batch-<account>` queue. */
    readonly id: string,
    readonly account: string,
    private readonly feeder: Feeder | undefined,
  ) {
    if (feeder) {
      this.feeding = feeder.run().catch(async (err: unknown) => {
        // The input failed: cancel what was added; `enqueued()` and the readers report why.
        await this.cancelAdded().catch(() => {});
        throw err;
      });
      this.feeding.catch(() => {});
      client.track(this.feeding);
    }
  }

  /**
   * Resolves once every item is added (the batch is sealed), with the counts; rejects with the
   * reason when the input stopped early (an invalid item, an input that threw), and with
   * `BatchAbandonedError` when its producer stopped before adding every item.
   */
  async enqueued(): Promise<FeedResult> {
    if (this.feeding) return this.feeding;
    const { redis, prefix } = this.client.context(this.account);
    for (let waitMs = 50; ; waitMs = Math.min(waitMs * 2, 1_000)) {
      const [sealed, error] = await redis.hmget(
        batchStateKey(prefix, this.account, this.id),
        BATCH_FIELDS.sealed,
        BATCH_FIELDS.error,
      );
      if (error) throw new Error(error);
      // An abandoned batch is not complete: its input stopped short.
      if (sealed === 'abandoned') {
        const total = await redis.hget(batchStateKey(prefix, this.account, this.id), BATCH_FIELDS.total);
        throw new BatchAbandonedError(this.id, Number(total ?? 0));
      }
      if (sealed) {
        const layoutKey = batchStateKey(prefix, this.account, this.id, 'layout');
        const [total, children] = await Promise.all([
          redis.hget(batchStateKey(prefix, this.account, this.id), BATCH_FIELDS.total),
          redis.llen(layoutKey),
        ]);
        return { items: Number(total ?? 0), children };
      }
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }

  /** Items done out of the total (also on the parent job's progress, which Bull Board shows). */
  async progress(): Promise<BatchProgress> {
    const { redis, prefix } = this.client.context(this.account);
    const f = BATCH_FIELDS;
    const [total, ok, failed, cancelled, sealed, finished, cancelRequested] = await redis.hmget(
      batchStateKey(prefix, this.account, this.id),
      f.total,
      f.ok,
      f.failed,
      f.cancelled,
      f.sealed,
      f.finished,
      f.cancelRequested,
    );
    const counts = {
      total: Number(total ?? 0),
      ok: Number(ok ?? 0),
      failed: Number(failed ?? 0),
      cancelled: Number(cancelled ?? 0),
    };
    return {
      ...counts,
      done: itemsDone(counts),
      sealed: sealed !== null,
      finished: finished === '1',
      cancelRequested: cancelRequested === '1',
    };
  }

  /**
   * The item results in input order, as they come: a bounded window is read ahead, and each child
   * is removed from Redis once its items are out (`remove: false` keeps them).
   */
  async *stream(options: ReadOptions = {}): AsyncGenerator<BatchItemResult> {
    // The children are in the batch's lane queue (see lanes.ts).
    const ctx = this.client.context(this.account, await this.client.laneOf(this.account, this.id));
    yield* readBatch(
      {
        batchId: this.id,
        account: this.account,
        redis: ctx.redis,
        prefix: ctx.prefix,
        queue: ctx.queue,
        watcher: ctx.watcher,
      },
      options,
    );
  }

  /** Every item's result, in input order: `results.length` equals the items read from the input. */
  async results(options: ReadOptions = {}): Promise<BatchItemResult[]> {
    const results: BatchItemResult[] = [];
    for await (const result of this.stream(options)) results.push(result);
    return results;
  }

  /** Write the results as JSONL (`{"index":0,"ok":true,"output":…}` a line), in input order, minding `drain`. */
  async writeJsonl(
    out: NodeJS.WritableStream,
    options: ReadOptions = {},
  ): Promise<{ items: number; ok: number; failed: number }> {
    const counts = { items: 0, ok: 0, failed: 0 };
    for await (const result of this.stream(options)) {
      const line = `${JSON.stringify({ index: counts.items, ...result })}\n`;
      counts.items++;
      if (result.ok) counts.ok++;
      else counts.failed++;
      if (!out.write(line)) await once(out, 'drain');
    }
    return counts;
  }

  /**
   * Stop adding items and remove the children not started yet (running ones finish). Their items
   * read as `{ ok: false, error: 'cancelled' }`; the parent completes once the running ones are done.
   */
  async cancel(): Promise<void> {
    this.feeder?.cancel();
    await this.feeding?.catch(() => {});
    await this.cancelAdded();
  }

  /**
   * Stop adding items without cancelling anything: the batch stays open and a retry with the same
   * batch id (and the same input) adds the rest. Resolves once this producer's feed has stopped.
   */
  async detach(): Promise<void> {
    this.feeder?.detach();
    await this.feeding?.catch(() => {});
  }

  private async cancelAdded(): Promise<void> {
    const { redis, prefix, batchQueue } = this.client.context(this.account);
    const key = batchStateKey(prefix, this.account, this.id);
    await redis
      .multi()
      .hset(key, BATCH_FIELDS.cancelRequested, '1')
      .hsetnx(key, BATCH_FIELDS.sealed, '1')
      .exec();
    // One script: every child still waiting (and the seal) goes; locked (running) children stay.
    const parent = await BullJob.fromId(batchQueue, this.id);
    await parent?.removeUnprocessedChildren();
  }
}
