import { JOB, type Job } from '@hfq/shared';
import {
  BATCH_CHILD,
  BATCH_FIELDS,
  type BatchChild,
  batchStateKey,
  blockingConnection,
  type RedisClient,
  sleep,
  splitHalvesOf,
} from '@hfq/shared/internal';
import { Job as BullJob, type Queue, QueueEvents } from 'bullmq';
import type { RedisOptions } from 'ioredis';
import { splitOutput } from './batch-items.js';

/**
 * Reading a batch's results in input order (see docs/architecture.md, "Batches are flows"). The children's ids follow the batch's
 * layout (one entry per child, its item count, appended as children are added), so the reader
 * needs no per-item state: it arms a window of children ahead of the consumer (each watched
 * through the account queue's events, with a state check so nothing finished earlier is missed),
 * yields the head child's items once it finished, and removes the child from Redis.
 * The window bounds what waits in memory; the consumer pulling sets the pace (backpressure).
 */

/** One item's result: the output, or why there is none (the child's failure, or `cancelled`). */
export type BatchItemResult = { ok: true; output: unknown } | { ok: false; error: string };

export class BatchTimeoutError extends Error {
  readonly code = 'HFQ_BATCH_TIMEOUT';
  constructor(
    readonly batchId: string,
    timeoutMs: number,
    readonly delivered: number,
  ) {
    super(
      `batch ${batchId}: item ${delivered} had no result within ${timeoutMs} ms (the batch is still running)`,
    );
    this.name = 'BatchTimeoutError';
  }
}

/** The batch's input stopped early (an invalid item, an input that threw); its other items were cancelled. */
export class BatchInputError extends Error {
  readonly code = 'HFQ_BATCH_INPUT';
  constructor(
    readonly batchId: string,
    readonly reason: string,
  ) {
    super(`batch ${batchId}: input stopped: ${reason}`);
    this.name = 'BatchInputError';
  }
}

/**
 * The batch's producer stopped before adding every item and its seal ran out: the batch completed
 * with the items it had, and no item can be added to it any more.
 */
export class BatchAbandonedError extends Error {
  readonly code = 'HFQ_BATCH_ABANDONED';
  constructor(
    readonly batchId: string,
    /** Items that were added (and run) before it was abandoned. */
    readonly added: number,
  ) {
    super(
      `batch ${batchId} was abandoned after ${added} item(s): its producer stopped before adding every item, ` +
        'and it completed with those; the rest can only run as a new batch',
    );
    this.name = 'BatchAbandonedError';
  }
}

export interface ReadOptions {
  /** Give up (`BatchTimeoutError`) when the whole read takes longer, ms. @defaultValue no limit */
  timeoutMs?: number;
  /** Items read ahead of the consumer: the reorder window. @defaultValue 1024 */
  windowItems?: number;
  /** Remove each child from Redis once its results are out. @defaultValue true */
  remove?: boolean;
  /**
   * Called before children whose results were handed out are removed from Redis, with nothing
   * else read meanwhile: make what was written durable here (an `fsync`), so a result leaves
   * Redis only once it is safe elsewhere. Removals wait for it, in groups.
   */
  beforeRemove?: () => Promise<void>;
  /**
   * Items the consumer holds already (a resumed read): they are not read again, and their
   * children are removed. @defaultValue 0
   */
  skipItems?: number;
  /** Stops the read: a pending `next()` rejects with the signal's reason, within a second. */
  signal?: AbortSignal;
}

export const CANCELLED = 'cancelled';
const REMOVED =
  'the result was removed from Redis before it was read (retention, or read and removed already)';
const LAYOUT_PAGE = 256;
const RECHECK_MS = 1_000;
const MAX_REMOVALS_IN_FLIGHT = 64;
/** Children handed out before their removal waits for `beforeRemove`. */
const REMOVAL_GROUP = 256;

type Outcome =
  | { kind: 'completed'; value: unknown }
  | { kind: 'failed'; reason: string }
  | { kind: 'missing' };
type ChildData = { job: Job; batch: BatchChild };

/** Finished, failed and removed events of one account queue, dispatched by job id. */
export class ChildWatcher {
  private readonly events: QueueEvents;
  private readonly waiters = new Map<string, Set<(outcome: Outcome) => void>>();

  constructor(queueName: string, connection: RedisOptions | RedisClient, prefix: string) {
    this.events = new QueueEvents(queueName, {
      connection: blockingConnection(connection),
      prefix,
    });
    this.events.on('error', () => {});
    this.events.on('completed', ({ jobId, returnvalue }) =>
      this.settle(jobId, { kind: 'completed', value: parsed(returnvalue) }),
    );
    this.events.on('failed', ({ jobId, failedReason }) =>
      this.settle(jobId, { kind: 'failed', reason: failedReason }),
    );
    this.events.on('removed', ({ jobId }) => this.settle(jobId, { kind: 'missing' }));
  }

  ready(): Promise<unknown> {
    return this.events.waitUntilReady();
  }

  /** Call `onOutcome` on the job's next finished or removed event; `stop()` to stop listening. */
  watch(jobId: string, onOutcome: (outcome: Outcome) => void): () => void {
    let set = this.waiters.get(jobId);
    if (!set) {
      set = new Set();
      this.waiters.set(jobId, set);
    }
    set.add(onOutcome);
    return () => {
      const current = this.waiters.get(jobId);
      current?.delete(onOutcome);
      if (current?.size === 0) this.waiters.delete(jobId);
    };
  }

  close(): Promise<void> {
    this.waiters.clear();
    return this.events.close();
  }

  private settle(jobId: string, outcome: Outcome): void {
    const set = this.waiters.get(jobId);
    if (!set) return;
    for (const waiter of [...set]) waiter(outcome);
  }
}

export interface ReadContext {
  batchId: string;
  account: string;
  prefix: string;
  /** Plain (non-blocking) connection, ready. */
  redis: RedisClient;
  /** The account queue the children are in. */
  queue: Queue;
  watcher: ChildWatcher;
}

interface Slot {
  id: string;
  count: number;
  data: ChildData | undefined;
  settled: Promise<Outcome>;
  /** Split parents to remove with this child. */
  alsoRemove: string[];
  /** Whether its outcome is known already. */
  peek(): boolean;
  recheck(): void;
  stop(): void;
}

/** The batch's item results in input order, each child removed once its items are out. */
export async function* readBatch(
  ctx: ReadContext,
  options: ReadOptions = {},
): AsyncGenerator<BatchItemResult> {
  const { batchId, redis, prefix } = ctx;
  const started = Date.now();
  const deadline = options.timeoutMs !== undefined ? started + options.timeoutMs : Number.POSITIVE_INFINITY;
  const windowItems = Math.max(1, options.windowItems ?? 1024);
  const layoutKey = batchStateKey(prefix, ctx.account, batchId, 'layout');
  const stateKey = batchStateKey(prefix, ctx.account, batchId);
  const removals = new Removals(ctx.queue, options.remove ?? true, options.beforeRemove);
  let skip = Math.max(0, options.skipItems ?? 0);
  const slots: Slot[] = [];
  let armedItems = 0;
  let seq = 0;
  let page: string[] = [];
  let delivered = 0;
  let pollMs = 20;
  let cancelled = false;
  const isCancelled = async () => {
    cancelled ||= (await redis.hget(stateKey, BATCH_FIELDS.cancelRequested)) === '1';
    return cancelled;
  };
  const timeout = () => new BatchTimeoutError(batchId, options.timeoutMs ?? 0, delivered);

  await ctx.watcher.ready();
  try {
    for (;;) {
      while (slots.length === 0 || armedItems < windowItems) {
        if (page.length === 0) page = await redis.lrange(layoutKey, seq, seq + LAYOUT_PAGE - 1);
        const count = page.shift();
        if (count === undefined) break;
        if (skip >= Number(count)) {
          // Held by the consumer already: only its removal is left.
          skip -= Number(count);
          await removals.add([`${batchId}-${seq}`]);
          seq++;
          continue;
        }
        slots.push(arm(ctx, `${batchId}-${seq}`, Number(count)));
        armedItems += Number(count);
        seq++;
      }
      const head = slots[0];
      if (!head) {
        // Nothing armed: the batch is complete, or its input is still coming in.
        const [state, length] = await readLayoutState(redis, stateKey, layoutKey);
        if (!state.exists) throw new Error(`no batch ${batchId} in Redis (never enqueued, or expired)`);
        if (state.sealed && seq >= length) {
          if (state.error) throw new BatchInputError(batchId, state.error);
          return;
        }
        if (Date.now() >= deadline) throw timeout();
        options.signal?.throwIfAborted();
        await sleep(Math.max(0, Math.min(pollMs, deadline - Date.now())));
        pollMs = Math.min(pollMs * 2, 500);
        continue;
      }
      pollMs = 20;
      // About to wait: what was handed out so far can leave Redis now.
      if (!head.peek()) await removals.flush();
      const outcome = await settle(head, deadline, timeout, options.signal);
      slots.shift();
      armedItems -= head.count;
      const split = outcome.kind === 'completed' ? splitHalvesOf(outcome.value) : undefined;
      if (split) {
        // The child split itself: its halves take its place, in order. It leaves Redis with its
        // last half, so a resumed read still finds the halves through it.
        const halves = split.map((half) => arm(ctx, half.id, half.count));
        const last = halves[halves.length - 1];
        if (last) last.alsoRemove.push(head.id, ...head.alsoRemove);
        slots.unshift(...halves);
        armedItems += head.count;
        continue;
      }
      let results = await resultsOf(ctx, head, outcome, isCancelled);
      if (skip > 0) {
        results = results.slice(skip);
        skip = 0;
      }
      for (const result of results) {
        yield result;
        delivered++;
      }
      await removals.add([head.id, ...head.alsoRemove]);
    }
  } finally {
    for (const slot of slots) slot.stop();
    await removals.flush();
  }
}

/** Watch a child and check its state (it may have finished before the watch began). */
function arm(ctx: ReadContext, id: string, count: number): Slot {
  let resolve: (outcome: Outcome) => void = () => {};
  const settled = new Promise<Outcome>((r) => {
    resolve = r;
  });
  let done = false;
  const finish = (outcome: Outcome) => {
    if (done) return;
    done = true;
    stopWatching();
    resolve(outcome);
  };
  const stopWatching = ctx.watcher.watch(id, finish);
  const slot: Slot = {
    id,
    count,
    data: undefined,
    settled,
    alsoRemove: [],
    peek: () => done,
    recheck: () => {
      void check().then(
        (outcome) => outcome && finish(outcome),
        () => {},
      );
    },
    stop: stopWatching,
  };
  const check = async (): Promise<Outcome | undefined> => {
    const job = await BullJob.fromId(ctx.queue, id);
    if (!job) return { kind: 'missing' };
    slot.data ??= childData(job.data, count);
    if (!job.finishedOn) return undefined;
    const state = await job.getState();
    if (state === 'completed') return { kind: 'completed', value: job.returnvalue };
    if (state === 'failed') return { kind: 'failed', reason: job.failedReason };
    return undefined;
  };
  slot.recheck();
  return slot;
}

/** The head's outcome; checks its state again now and then in case an event was missed. */
async function settle(
  head: Slot,
  deadline: number,
  timeout: () => Error,
  signal: AbortSignal | undefined,
): Promise<Outcome> {
  for (;;) {
    signal?.throwIfAborted();
    const wait = Math.min(RECHECK_MS, deadline - Date.now());
    if (wait <= 0) throw timeout();
    let timer: NodeJS.Timeout | undefined;
    const tick = new Promise<undefined>((r) => {
      timer = setTimeout(() => r(undefined), wait);
    });
    const outcome = await Promise.race([head.settled, tick]);
    clearTimeout(timer);
    if (outcome) return outcome;
    head.recheck();
  }
}

async function resultsOf(
  ctx: ReadContext,
  slot: Slot,
  outcome: Outcome,
  isCancelled: () => Promise<boolean>,
): Promise<BatchItemResult[]> {
  const all = (error: string) => Array.from({ length: slot.count }, () => ({ ok: false as const, error }));
  if (outcome.kind === 'failed') return all(outcome.reason || 'failed');
  if (outcome.kind === 'missing') return all((await isCancelled()) ? CANCELLED : REMOVED);
  let data = slot.data;
  if (!data) {
    // Finished before the first state check read its data.
    const job = await BullJob.fromId(ctx.queue, slot.id);
    data = job ? childData(job.data, slot.count) : undefined;
  }
  if (!data) return all(REMOVED);
  return splitOutput(data.job, data.batch, (outcome.value as { output?: unknown } | null)?.output);
}

function childData(raw: unknown, count: number): ChildData | undefined {
  const data = raw as { job?: unknown; batch?: unknown } | null;
  const job = JOB.safeParse(data?.job);
  if (!job.success) return undefined;
  const batch = BATCH_CHILD.safeParse(data?.batch);
  return { job: job.data, batch: batch.success ? batch.data : { id: '', index: 0, count } };
}

async function readLayoutState(
  redis: RedisClient,
  stateKey: string,
  layoutKey: string,
): Promise<[{ exists: boolean; sealed: boolean; error: string | null }, number]> {
  // One transaction: `sealed` is written after the last layout entry, so the pair is consistent.
  const replies = await redis
    .multi()
    .hmget(stateKey, BATCH_FIELDS.account, BATCH_FIELDS.sealed, BATCH_FIELDS.error)
    .llen(layoutKey)
    .exec();
  const [account, sealed, error] = (replies?.[0]?.[1] as (string | null)[] | undefined) ?? [null, null, null];
  return [
    { exists: account != null, sealed: sealed != null, error: error ?? null },
    Number(replies?.[1]?.[1] ?? 0),
  ];
}

/**
 * Children removed once read, in groups: each group waits for `beforeRemove` (the consumer making
 * what it wrote durable), then goes a bounded number of removals at a time.
 */
class Removals {
  private pending: string[] = [];

  constructor(
    private readonly queue: Queue,
    private readonly enabled: boolean,
    private readonly beforeRemove: (() => Promise<void>) | undefined,
  ) {}

  async add(ids: string[]): Promise<void> {
    if (!this.enabled) return;
    this.pending.push(...ids);
    if (this.pending.length >= REMOVAL_GROUP) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const ids = this.pending;
    this.pending = [];
    await this.beforeRemove?.();
    for (let i = 0; i < ids.length; i += MAX_REMOVALS_IN_FLIGHT) {
      await Promise.all(
        ids
          .slice(i, i + MAX_REMOVALS_IN_FLIGHT)
          .map((id) => this.queue.remove(id, { removeChildren: false }).catch(() => 0)),
      );
    }
  }
}

function parsed(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}
