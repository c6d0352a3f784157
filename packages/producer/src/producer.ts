import {
  type Connection,
  contentJobId,
  DEFAULT_ATTEMPTS,
  DEFAULT_BACKOFF,
  DEFAULT_PREFIX,
  DEFAULT_RETENTION,
  type InferenceResult,
  isSampling,
  JOB,
  type Job,
  ValidationError,
} from '@hfq/shared';
import {
  type BlockingSource,
  blockingConnection,
  blockingSourceFor,
  checkPrefix,
  checkRedisTarget,
  connectionFor,
  describeMemory,
  isConnectionLost,
  isRedisOutOfMemory,
  JOB_SCHEMA_VERSION,
  type JobData,
  LANE_RECORD_MS,
  type LaneId,
  laneAnnouncement,
  laneOf,
  laneQueueName,
  lanesChannel,
  parkingDelayMs,
  parseOrThrow,
  type RedisClient,
  ROUTER_LANE,
  readLanes,
  readRedisMemory,
  recordAccountQueue,
  recordLanes,
  whenReady,
} from '@hfq/shared/internal';
import { type Job as BullJob, type JobsOptions, PRIORITY_LIMIT, Queue, QueueEvents } from 'bullmq';
import { addAtomically } from './atomic-add.js';
import { BatchClient, type BatchOptions, type BatchSpec } from './batch.js';
import type { Batch } from './batch-handle.js';
import { readDueOptions } from './deadline-option.js';
import { EndpointIndex } from './endpoint-index.js';
import { estimateAddBytes, Headroom, type HeadroomOptions, NoHeadroomError } from './headroom.js';
import { JobHandle } from './job-handle.js';

export interface ProducerOptions {
  /**
   * A Redis URL, ioredis options, an ioredis `Redis` or `Cluster` (duplicated; yours to close), or
   * `{ clusterNodes: [{ host, port }, …], redisOptions? }` for a Redis Cluster.
   */
  connection: Connection;
  /** BullMQ key prefix shared with the workers. @defaultValue `'hfq'` */
  prefix?: string;
  /** Redis headroom kept for the workers: new work is refused above it (see headroom.ts). */
  headroom?: HeadroomOptions;
}

export interface EnqueueOptions {
  /**
   * The job's id; wins over content identity. Makes the enqueue idempotent while the job is
   * retained: a second add with the same id adds nothing. @defaultValue the job's content id
   * (`contentJobId`), or a fresh id for a sampling job or `unique: false`
   */
  jobId?: string;
  /**
   * `false`: this enqueue is new work even when the same job is queued, running or retained (no
   * content id, and the result ledger never answers it). @defaultValue true (see README, 'Pay once')
   */
  unique?: boolean;
  /** Part of the content id: tells apart jobs that ask for the same thing on purpose (a line number). */
  contentKey?: string;
  /** BullMQ priority (1 is highest). Single jobs without one run before batch items. */
  priority?: number;
  /** Start no sooner than this many ms from now. */
  delayMs?: number;
  /** Fail instead of starting when this many ms have passed since the enqueue. */
  deadlineMs?: number;
  /**
   * When the job should be done by: an ISO 8601 time with a zone, a `Date`, or a duration from now
   * (`"45m"`, `"6h"`, `"1h30m"`). Carried in the job's data for the batch route's planner (see
   * README, "Deadlines and the batch route"): with preference `cost`, a chat or embedding job
   * waits up to 30 s for the planner, which sends it to a provider batch or to real time. Unlike
   * `deadlineMs`, the job is never failed for it.
   */
  deadline?: string | Date;
  /** With a `deadline`: `cost` (the cheapest route that meets it) or `speed` (as without one). @defaultValue `'cost'` */
  preference?: 'cost' | 'speed';
}

const JOB_ID = /^(?!\d+$)[A-Za-z0-9_.-]{1,128}$/;

/** Some accounts' jobs were added and others' not: which, per account (see `enqueueMany`). */
export class EnqueueManyError extends Error {
  readonly code = 'HFQ_ENQUEUE_PARTIAL';
  constructor(
    readonly accounts: ReadonlyArray<{
      account: string;
      /** `true`: every job of this account is in; `false`: none is; `unknown`: Redis did not answer. */
      added: boolean | 'unknown';
      /** Indexes (in the `enqueueMany` input) of this account's jobs. */
      indexes: number[];
      reason?: string;
    }>,
  ) {
    const describe = (a: (typeof accounts)[number]) =>
      `${a.account}: ${a.added === true ? 'added' : a.added === false ? 'not added' : 'unknown'} (${a.indexes.length} job(s)${a.reason ? `: ${a.reason}` : ''})`;
    super(
      `enqueueMany added some accounts' jobs and not others': ${accounts.map(describe).join('; ')}. ` +
        'Retrying with the same jobIds adds only what is missing',
    );
    this.name = 'EnqueueManyError';
  }
}

/** Validated job data and options for one add: nothing reaches Redis before this passes. */
export function prepareJob(job: unknown, options: EnqueueOptions = {}, nowMs = Date.now()) {
  const parsed = parseOrThrow(JOB, job, 'job');
  if (options.jobId !== undefined && !JOB_ID.test(options.jobId)) {
    throw new ValidationError('enqueue options', [
      {
        path: 'jobId',
        message: 'letters, digits, "_", "." or "-" (not only digits), at most 128 characters',
      },
    ]);
  }
  // BullMQ refuses a priority above PRIORITY_LIMIT only inside addBulk, after other accounts' jobs may be in.
  const bounds = { priority: PRIORITY_LIMIT, delayMs: 2 ** 31, deadlineMs: 2 ** 31 } as const;
  for (const [field, max] of Object.entries(bounds) as [keyof typeof bounds, number][]) {
    const value = options[field];
    if (value !== undefined && (!Number.isInteger(value) || value < 0 || value > max)) {
      throw new ValidationError('enqueue options', [
        { path: field, message: `a whole number from 0 to ${max}` },
      ]);
    }
  }
  if (
    options.contentKey !== undefined &&
    (typeof options.contentKey !== 'string' || options.contentKey.length > 200)
  ) {
    throw new ValidationError('enqueue options', [
      { path: 'contentKey', message: 'a string of at most 200 characters' },
    ]);
  }
  if (options.unique !== undefined && typeof options.unique !== 'boolean') {
    throw new ValidationError('enqueue options', [{ path: 'unique', message: 'true or false' }]);
  }
  const data: JobData = { v: JOB_SCHEMA_VERSION, job: parsed };
  if (options.unique === false) data.fresh = true;
  if (options.deadlineMs !== undefined) data.deadlineAt = nowMs + options.deadlineMs;
  Object.assign(data, dueOptions(options, nowMs));
  const opts: JobsOptions = {
    attempts: DEFAULT_ATTEMPTS,
    backoff: { ...DEFAULT_BACKOFF },
    removeOnComplete: { ...DEFAULT_RETENTION.removeOnComplete },
    removeOnFail: { ...DEFAULT_RETENTION.removeOnFail },
  };
  // Pay once (docs/architecture.md): the same request is the same job, unless it samples or the caller says otherwise.
  if (options.jobId !== undefined) opts.jobId = options.jobId;
  else if (options.unique !== false && !isSampling(parsed)) {
    opts.jobId = contentJobId(parsed, options.contentKey !== undefined ? { key: options.contentKey } : {});
  }
  if (options.priority !== undefined) opts.priority = options.priority;
  if (options.delayMs !== undefined) opts.delay = options.delayMs;
  // Parked for the batch planner's window (see docs/architecture.md, "Deadlines and the batch route").
  const parkMs = parkingDelayMs(parsed, data, nowMs);
  if (parkMs !== undefined && parkMs > (opts.delay ?? 0)) opts.delay = parkMs;
  return { data, opts, name: parsed.task, account: parsed.account };
}

/** The `deadline` and `preference` options as job data; throws `ValidationError` naming the field. */
function dueOptions(options: EnqueueOptions, nowMs: number): Pick<JobData, 'dueAt' | 'preference'> {
  const read = readDueOptions(options, nowMs);
  if (!read.ok) throw new ValidationError('enqueue options', [{ path: read.path, message: read.message }]);
  return read.due;
}

export class Producer {
  private readonly prefix: string;
  private readonly connection: RedisClient;
  /** What the producer's blocking readers (queue events) connect from; made on first use. */
  private blocking: BlockingSource | undefined;
  /** Set once the start-up check passed (see `checkRedisTarget`). */
  private checked: Promise<void> | undefined;
  private readonly queues = new Map<string, Queue>();
  private readonly events = new Map<string, Promise<QueueEvents>>();
  /** When this producer last wrote each `account/lane` to the lane registry (see lanes.ts). */
  private readonly lanesRecorded = new Map<string, number>();
  private batchClient: BatchClient | undefined;
  private readonly headroom: Headroom;
  private readonly endpointIndex: EndpointIndex;
  private closed = false;

  constructor(private readonly options: ProducerOptions) {
    this.prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
    this.connection = connectionFor(options.connection, 'producer', `${this.prefix}:hfq-producer`);
    // Errors surface on the commands that fail; the event only keeps Node from crashing on it.
    this.connection.on('error', () => {});
    this.headroom = new Headroom(this.connection, options.headroom);
    this.endpointIndex = new EndpointIndex(this.connection, this.prefix);
  }

  /** Validate, then add one job to its lane's queue (see `lane`). */
  async enqueue(job: Job | unknown, options: EnqueueOptions = {}): Promise<JobHandle> {
    const prepared = prepareJob(job, options);
    const { account } = prepared;
    const bytes = estimateAddBytes(prepared.data, prepared.opts);
    // The queue is made once the connection is ready (inside whileConnected), like enqueueMany's.
    const { id, queue } = await this.whileConnected(async () => {
      await this.headroom.check(this.queue(account), bytes);
      const lane = await this.lane(account, prepared.data.job);
      const queue = this.queue(account, lane);
      const record = this.lanesToRecord(account, [lane]);
      if (record.length === 0) {
        const added = await queue
          .add(prepared.name, prepared.data, prepared.opts)
          .catch((err: unknown) => this.refused(err, bytes));
        return { id: added.id as string, queue };
      }
      // A lane that workers may not know yet: the job and the lane's registry entry in one transaction.
      const [added] = await addAtomically(queue, [prepared], (multi) =>
        recordLanes(multi, this.prefix, account, record, Date.now()),
      ).catch((err: unknown) => this.refused(err, bytes));
      this.markRecorded(account, record);
      return { id: added as string, queue };
    });
    await this.indexForEndpoints(account, queue, [{ job: prepared.data.job, id }]);
    return new JobHandle(id, account, queue, () => this.queueEvents(queue.name));
  }

  /**
   * The lane a job goes to (see docs/architecture.md, "Every route its own lane"): an endpoint's
   * from the table workers publish, else its explicit provider's, else the router's. A failed read
   * of the table sends it to the router lane, where the worker still routes it to its endpoint.
   */
  private async lane(
    account: string,
    job: { task: string; model: string; provider?: string | undefined },
  ): Promise<LaneId> {
    const endpoints = await this.endpointIndex.endpointsOf(account).catch(() => []);
    return laneOf(job, endpoints);
  }

  /** Lanes other than the router's not written to the registry by this producer for `LANE_RECORD_MS`. */
  private lanesToRecord(account: string, lanes: Iterable<LaneId>): LaneId[] {
    const now = Date.now();
    return [...new Set(lanes)].filter(
      (lane) =>
        lane !== ROUTER_LANE && now - (this.lanesRecorded.get(`${account}/${lane}`) ?? 0) >= LANE_RECORD_MS,
    );
  }

  /** Note lanes as written to the registry, and announce them to running workers (see lanes.ts). */
  private markRecorded(account: string, lanes: readonly LaneId[]): void {
    const now = Date.now();
    for (const lane of lanes) {
      this.lanesRecorded.set(`${account}/${lane}`, now);
      // Best effort: a worker that misses it finds the lane in the registry on its next round.
      this.connection.publish(lanesChannel(this.prefix), laneAnnouncement(account, lane)).catch(() => {});
    }
  }

  /**
   * Validate every job first (nothing is added if one is invalid), then add each account's jobs in
   * one transaction: per account, all of them or none. Accounts are separate queues, so one
   * account's jobs can be in while another's failed: then `EnqueueManyError` says, per account,
   * which job indexes were added, not added, or are unknown (the connection dropped before Redis
   * answered). With a `jobId` on every job, calling again with the same jobs is safe: jobs already
   * in are not added twice.
   */
  async enqueueMany(jobs: ReadonlyArray<Job | { job: Job; options?: EnqueueOptions }>): Promise<JobHandle[]> {
    const prepared = jobs.map((entry, index) => {
      const isWrapped = typeof entry === 'object' && entry !== null && 'job' in entry && !('task' in entry);
      try {
        return isWrapped
          ? prepareJob((entry as { job: Job }).job, (entry as { options?: EnqueueOptions }).options)
          : prepareJob(entry);
      } catch (err) {
        if (err instanceof ValidationError) {
          throw new ValidationError(
            `job at index ${index}`,
            err.issues.map((i) => ({ path: `${index}.${i.path}`, message: i.message })),
          );
        }
        throw err;
      }
    });
    const byAccount = new Map<string, { index: number; item: (typeof prepared)[number] }[]>();
    prepared.forEach((item, index) => {
      const list = byAccount.get(item.account) ?? [];
      list.push({ index, item });
      byAccount.set(item.account, list);
    });
    const handles: JobHandle[] = new Array(prepared.length);
    const bytesOf = new Map(
      [...byAccount].map(([account, list]) => [
        account,
        list.reduce((sum, { item }) => sum + estimateAddBytes(item.data, item.opts), 0),
      ]),
    );
    await this.whileConnected(async () => {
      for (const [account, bytes] of bytesOf) await this.headroom.check(this.queue(account), bytes);
    });
    // One transaction per account: each account's jobs, over all its lanes (one hash tag), are
    // all added or none are, with the registry entries of lanes workers may not know yet.
    const outcomes = await Promise.allSettled(
      [...byAccount].map(async ([account, list]) => {
        const queues = await Promise.all(
          list.map(async ({ item }) => this.queue(account, await this.lane(account, item.data.job))),
        );
        const record = this.lanesToRecord(
          account,
          queues.map((q) => this.laneOfQueue(q)),
        );
        const ids = await this.whileConnected(() =>
          addAtomically(
            this.queue(account),
            list.map(({ item }, i) => ({
              queue: queues[i] as Queue,
              name: item.name,
              data: item.data,
              opts: item.opts,
            })),
            (multi) => recordLanes(multi, this.prefix, account, record, Date.now()),
          ).catch((err: unknown) => this.refused(err, bytesOf.get(account) ?? 0)),
        );
        this.markRecorded(account, record);
        ids.forEach((id, i) => {
          const entry = list[i];
          const queue = queues[i] as Queue;
          if (entry)
            handles[entry.index] = new JobHandle(id, account, queue, () => this.queueEvents(queue.name));
        });
        const byQueue = new Map<Queue, { job: Job; id: string }[]>();
        ids.forEach((id, i) => {
          const entry = list[i];
          const queue = queues[i] as Queue;
          if (!entry) return;
          const added = byQueue.get(queue) ?? [];
          added.push({ job: entry.item.data.job, id });
          byQueue.set(queue, added);
        });
        for (const [queue, added] of byQueue) await this.indexForEndpoints(account, queue, added);
      }),
    );
    // Redis refused every account's add for memory (one account: the usual case): say so plainly.
    const refusal = outcomes.find((o) => o.status === 'rejected')?.reason;
    if (
      refusal instanceof NoHeadroomError &&
      outcomes.every((o) => o.status === 'rejected' && o.reason instanceof NoHeadroomError)
    ) {
      throw refusal;
    }
    if (outcomes.some((o) => o.status === 'rejected')) {
      const accounts = [...byAccount].map(([account, list], i) => {
        const outcome = outcomes[i];
        const indexes = list.map((e) => e.index);
        if (outcome?.status === 'fulfilled') return { account, added: true as const, indexes };
        const reason = (outcome?.reason as Error | undefined)?.message ?? String(outcome?.reason);
        // A lost connection may have lost the answer, not the transaction.
        const added = /not reachable|Connection|ECONN|EPIPE|ETIMEDOUT/.test(reason) ? 'unknown' : false;
        return { account, added, indexes, reason } as const;
      });
      throw new EnqueueManyError(accounts);
    }
    return handles;
  }

  /**
   * Jobs an Inference Endpoint serves go to its backlog index (see endpoint-index.ts). The jobs
   * are in already: a failed write here does not fail the enqueue (a worker that finds the
   * endpoint unavailable for such a job marks the demand instead).
   */
  private async indexForEndpoints(
    account: string,
    queue: Queue,
    added: { job: { task: string; model: string }; id: string }[],
  ): Promise<void> {
    await this.endpointIndex
      .record(
        account,
        added.map(({ job, id }) => ({ task: job.task, model: job.model, key: queue.toKey(id) })),
      )
      .catch(() => {});
  }

  /**
   * An add failed: when Redis refused it for memory (`OOM`, or `EXECABORT` for a transaction that
   * held an `OOM`), nothing was added, and the caller gets `NoHeadroomError` with the figures
   * instead of Redis' words; its bytes are no longer counted. Anything else is rethrown.
   */
  private async refused(err: unknown, bytes: number): Promise<never> {
    if (!isRedisOutOfMemory(err)) throw err;
    this.headroom.refund(bytes);
    const memory = await readRedisMemory(this.connection).catch(() => undefined);
    throw new NoHeadroomError(
      `Redis refused the add: it is out of memory (maxmemory reached, writes refused)${memory ? `: ${describeMemory(memory)}` : ''}. Nothing was added; retry once the workers have drained some jobs, or raise maxmemory`,
      memory,
    );
  }

  /**
   * A handle on a job added earlier (by this or another process), by its id, account and lane
   * (`handle.lane`; the router lane when not given). Use `findJob` when the lane is not known.
   */
  job(jobId: string, account: string, lane: LaneId = ROUTER_LANE): JobHandle {
    const queue = this.queue(account, lane);
    return new JobHandle(jobId, account, queue, () => this.queueEvents(queue.name));
  }

  /**
   * A job by id in any lane of its account (the lanes the registry lists), as BullMQ's `Job`
   * (`retry()`, `remove()`, its data and state); undefined when no lane holds it.
   */
  async findJob(account: string, jobId: string): Promise<BullJob | undefined> {
    const lanes = await this.whileConnected(() => readLanes(this.connection, this.prefix, account));
    for (const lane of lanes.keys()) {
      const job = await this.queue(account, lane).getJob(jobId);
      if (job) return job;
    }
    return undefined;
  }

  /**
   * Fault test: fail fast, with an error that says so, while Redis is down. BullMQ waits
   * for a connection that is not ready with no time limit, so an enqueue while Redis was down hung
   * (and added the job whenever Redis came back); and a command caught by the drop itself failed
   * with ioredis' "Stream isn't writeable and enableOfflineQueue options is false".
   */
  private async whileConnected<T>(op: () => Promise<T>): Promise<T> {
    this.checked ??= checkRedisTarget(this.connection, this.options.connection, 5_000).catch((err) => {
      this.checked = undefined;
      throw err;
    });
    await this.checked;
    await whenReady(this.connection);
    try {
      return await op();
    } catch (err) {
      const status = this.connection.status;
      // A dropped socket can fail a command before ioredis has noticed the close (status still 'ready').
      if (status === 'ready' && !isConnectionLost(err)) throw err;
      throw new Error(`Redis not reachable (connection ${status}): ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /**
   * Enqueue a batch (a BullMQ flow, see batch.ts): validates, creates the batch and starts adding
   * its items in chunks; `batch.enqueued()` resolves once all are in, `batch.results()` reads them.
   */
  async enqueueBatch(spec: BatchSpec, options: BatchOptions = {}): Promise<Batch> {
    const batches = this.batches();
    await this.whileConnected(() => this.headroom.check());
    return batches.enqueue(spec, options);
  }

  /** A handle on a batch enqueued earlier, by this or another process. */
  batch(batchId: string): Promise<Batch> {
    return this.batches().open(batchId);
  }

  private batches(): BatchClient {
    if (this.closed) throw new Error('producer is closed');
    this.batchClient ??= new BatchClient({
      connection: this.connection,
      connectionOptions: this.blockingSource().connection,
      prefix: this.prefix,
      queue: (account, lane) => this.queue(account, lane),
      lane: (account, job) => this.lane(account, job),
      recordLane: async (account, lane) => {
        const record = this.lanesToRecord(account, [lane]);
        if (record.length === 0) return;
        const multi = this.connection.multi();
        recordLanes(multi, this.prefix, account, record, Date.now());
        await multi.exec();
        this.markRecorded(account, record);
      },
      endpointIndex: this.endpointIndex,
    });
    return this.batchClient;
  }

  /**
   * The BullMQ queue of one lane of an account, the router lane (the account queue) by default
   * (created on first use; closed with the producer).
   */
  queue(account: string, lane: LaneId = ROUTER_LANE): Queue {
    if (this.closed) throw new Error('producer is closed');
    const name = laneQueueName(account, lane);
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.connection, prefix: this.prefix });
      queue.on('error', () => {});
      // Sent on the queue's own connection before its first add, so status can list the queue.
      recordAccountQueue(this.connection, this.prefix, [account]).catch(() => {});
      // Each pending handle.result() listens for the queue closing.
      queue.setMaxListeners(0);
      this.queues.set(name, queue);
      this.queueLanes.set(queue, lane);
    }
    return queue;
  }

  private readonly queueLanes = new Map<Queue, LaneId>();

  private laneOfQueue(queue: Queue): LaneId {
    return this.queueLanes.get(queue) ?? ROUTER_LANE;
  }

  /**
   * The account's event reader, made once. It reads from the Redis time at which it was made, not
   * from `$`: QueueEvents sends its first blocking read some time after it is ready, and a job that
   * finished in between (after `result()` found it unfinished) would never be reported.
   */
  private queueEvents(queueName: string): Promise<QueueEvents> {
    if (this.closed) return Promise.reject(new Error('producer is closed'));
    let events = this.events.get(queueName);
    if (!events) {
      events = this.whileConnected(() => this.connection.time()).then(([seconds, micros]) => {
        const lastEventId = `${Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - 1}-0`;
        // BullMQ owns this connection (blocking reads), so `close()` ends it.
        const connection = blockingConnection(this.blockingSource().connection);
        const reader = new QueueEvents(queueName, {
          connection,
          prefix: this.prefix,
          lastEventId,
        });
        reader.on('error', () => {});
        return reader;
      });
      // A failed start is not cached: the next result() tries again.
      events.catch(() => this.events.delete(queueName));
      this.events.set(queueName, events);
    }
    return events;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Batches first: their input finishes being added while the queues are still open.
    await this.batchClient?.close();
    this.closed = true;
    await Promise.all(
      [...this.events.values()].map((e) => e.then((reader) => reader.close()).catch(() => {})),
    );
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    await this.connection.quit().catch(() => this.connection.disconnect());
    this.blocking?.close();
  }

  private blockingSource(): BlockingSource {
    this.blocking ??= blockingSourceFor(this.options.connection, `${this.prefix}:hfq-producer-events`);
    return this.blocking;
  }
}

export function createProducer(options: ProducerOptions): Producer {
  return new Producer(options);
}

export type { InferenceResult };
