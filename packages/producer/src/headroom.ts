import { describeMemory, type RedisClient, type RedisMemory, readRedisMemory } from '@hfq/shared/internal';
import type { Queue } from 'bullmq';

/**
 * The producer keeps Redis headroom for the workers (README, 'Redis memory'). With `maxmemory`
 * and `noeviction` (what README recommends), a full Redis refuses every write, and BullMQ cannot
 * move a single job: the workers could not even drain what is queued. So the producer refuses new
 * work above a high-water mark of Redis memory (and, optionally, above a backlog size per account
 * queue), with an error that says why, and the workers always have room to drain.
 *
 * A reading of Redis memory is kept for `refreshMs`, and every add counts the bytes it is about
 * to write on top of it, so a fast loop cannot pass the mark between two readings; a projection
 * that reaches the mark is read again before anything is refused.
 */
export interface HeadroomOptions {
  /**
   * Refuse new work once Redis `used_memory`, with what the add would write, would pass this
   * share of `maxmemory` (ignored when no `maxmemory` is set). The rest is the workers' room: a
   * drained job keeps its result (README, 'Redis memory'). @defaultValue 0.5
   */
  maxMemoryRatio?: number;
  /** Refuse new work once an account queue holds this many jobs not yet run (waiting, prioritized, delayed). @defaultValue no limit */
  maxBacklog?: number;
  /** Read Redis memory and queue counts again at most this often, ms (adds in between are counted). @defaultValue 1000 */
  refreshMs?: number;
  /**
   * Above the mark, make room by removing the account queue's oldest completed jobs (their results
   * were published when they completed) before refusing: retention gives way to new work instead
   * of wedging the producer until completed jobs age out. `false`: keep every completed job for its
   * full retention; new work then waits for retention to free memory. @defaultValue true
   */
  trimCompleted?: boolean;
}

/** New work refused to keep Redis headroom for the workers: retry once they have drained some. */
export class NoHeadroomError extends Error {
  readonly code = 'HFQ_NO_HEADROOM';
  constructor(
    message: string,
    readonly memory: RedisMemory | undefined,
  ) {
    super(message);
    this.name = 'NoHeadroomError';
  }
}

/**
 * Redis bytes an add costs beyond its JSON: the job hash's fields and their encoding, the wait
 * list or priority set entry, the id counter and the events stream's `added`/`waiting` entries
 * (measured with BullMQ 5 on Redis 7: ~1.3 KB for a 2 KB job; rounded up).
 */
const PER_JOB_OVERHEAD_BYTES = 1_024;
/** Bytes the JSON of a job costs in Redis, per byte (hash table encoding, allocator rounding). */
const PER_JSON_BYTE = 1.25;
/** Completed jobs removed per try when making room (oldest first), and tries per check. */
const TRIM_BATCH = 500;
const TRIM_TRIES = 8;

/** Estimated Redis bytes of adding a job with this data and options. */
export function estimateAddBytes(data: unknown, opts: unknown): number {
  return (
    Math.ceil(PER_JSON_BYTE * (JSON.stringify(data).length + JSON.stringify(opts).length)) +
    PER_JOB_OVERHEAD_BYTES
  );
}

interface Reading {
  at: number;
  value: Promise<RedisMemory>;
  /** Bytes this producer added (or is adding) since the reading was taken. */
  written: number;
}

export class Headroom {
  private readonly maxMemoryRatio: number;
  private readonly refreshMs: number;
  private memory: Reading | undefined;
  private readonly backlogs = new Map<string, { at: number; value: Promise<number> }>();

  constructor(
    private readonly redis: RedisClient,
    private readonly options: HeadroomOptions = {},
  ) {
    this.maxMemoryRatio = options.maxMemoryRatio ?? 0.5;
    this.refreshMs = options.refreshMs ?? 1_000;
    if (!(this.maxMemoryRatio > 0 && this.maxMemoryRatio <= 1))
      throw new RangeError(`headroom.maxMemoryRatio must be in (0, 1], got ${this.maxMemoryRatio}`);
  }

  /**
   * Throws `NoHeadroomError` when adding `bytes` (see `estimateAddBytes`) would take Redis past the
   * high-water mark, or `queue` is above the backlog; else counts `bytes` as written.
   */
  async check(queue?: Queue, bytes = 0): Promise<void> {
    let reading = this.reading(false);
    let memory = await reading.value;
    const mark = this.maxMemoryRatio * memory.maxBytes;
    const over = (m: RedisMemory, r: Reading) => m.maxBytes > 0 && m.usedBytes + r.written + bytes > mark;
    if (over(memory, reading) && (reading.written > 0 || Date.now() > reading.at)) {
      // Near the mark, a projection is not enough: read what Redis uses now.
      reading = this.reading(true);
      memory = await reading.value;
    }
    for (let tries = 0; over(memory, reading) && queue && this.options.trimCompleted !== false; tries += 1) {
      if (tries >= TRIM_TRIES) break;
      const removed = await queue.clean(0, TRIM_BATCH, 'completed').catch(() => []);
      if (removed.length === 0) break;
      reading = this.reading(true);
      memory = await reading.value;
    }
    if (over(memory, reading)) {
      throw new NoHeadroomError(
        `Redis is above the producer's high-water mark (${Math.round(this.maxMemoryRatio * 100)}% of maxmemory): ${describeMemory(memory)}, and this add needs ~${Math.ceil(bytes / 1024)} KB more. New work is refused so that workers can drain the queues; retry when they have, or raise maxmemory`,
        memory,
      );
    }
    reading.written += bytes;
    const max = this.options.maxBacklog;
    if (queue && max !== undefined) {
      const backlog = await this.cachedBacklog(queue);
      if (backlog >= max) {
        reading.written -= bytes;
        throw new NoHeadroomError(
          `queue ${queue.name} holds ${backlog} jobs not yet run, at the producer's backlog limit (maxBacklog ${max}). New work is refused until the workers drain it`,
          undefined,
        );
      }
    }
  }

  /** An add that was counted did not happen (refused by Redis): its bytes are not in Redis. */
  refund(bytes: number): void {
    if (this.memory) this.memory.written = Math.max(0, this.memory.written - bytes);
  }

  /** The kept reading, or a new one when it is older than `refreshMs`, failed, or `fresh` is asked. */
  private reading(fresh: boolean): Reading {
    const kept = this.memory;
    if (!fresh && kept && Date.now() - kept.at < this.refreshMs) return kept;
    const reading: Reading = { at: Date.now(), value: readRedisMemory(this.redis), written: 0 };
    // A failed read is not kept: the next check reads again.
    reading.value.catch(() => {
      if (this.memory === reading) this.memory = undefined;
    });
    this.memory = reading;
    return reading;
  }

  private cachedBacklog(queue: Queue): Promise<number> {
    const entry = this.backlogs.get(queue.name);
    if (entry && Date.now() - entry.at < this.refreshMs) return entry.value;
    const fresh = {
      at: Date.now(),
      value: queue
        .getJobCounts('waiting', 'prioritized', 'delayed')
        .then((counts) => Object.values(counts).reduce((a, b) => a + b, 0)),
    };
    fresh.value.catch(() => this.backlogs.delete(queue.name));
    this.backlogs.set(queue.name, fresh);
    return fresh.value;
  }
}
