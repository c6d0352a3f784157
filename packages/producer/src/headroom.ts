import { describeMemory, type RedisClient, type RedisMemory, readRedisMemory } from '@hfq/shared/internal';
import type { Queue } from 'bullmq';

/**
 * The producer keeps Redis headroom for the workers. With `maxmemory` and `noeviction` (what
 * README recommends), a full Redis refuses every write, and BullMQ cannot move a single job: the
 * workers could not even drain what is queued. So the producer refuses new work above a
 * high-water mark of Redis memory (and, optionally, above a backlog size per account queue),
 * with an error that says why, and the workers always have room to drain.
 */
export interface HeadroomOptions {
  /**
   * Refuse new work once Redis `used_memory` reaches this share of `maxmemory` (ignored when no
   * `maxmemory` is set). The rest is the workers' room: a completed job's retained result takes
   * about three times its waiting job (README, 'Sizing Redis'). @defaultValue 0.5
   */
  maxMemoryRatio?: number;
  /** Refuse new work once an account queue holds this many jobs not yet run (waiting, prioritized, delayed). @defaultValue no limit */
  maxBacklog?: number;
  /** Read Redis memory and queue counts again at most this often, ms. @defaultValue 1000 */
  refreshMs?: number;
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

export class Headroom {
  private readonly maxMemoryRatio: number;
  private readonly refreshMs: number;
  private memory: { at: number; value: Promise<RedisMemory> } | undefined;
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

  /** Throws `NoHeadroomError` when Redis is above the high-water mark or `queue` above the backlog. */
  async check(queue?: Queue): Promise<void> {
    const memory = await this.cached(
      this.memory,
      () => readRedisMemory(this.redis),
      (e) => {
        this.memory = e;
      },
    );
    if (memory.maxBytes > 0 && memory.usedBytes >= this.maxMemoryRatio * memory.maxBytes) {
      throw new NoHeadroomError(
        `Redis is above the producer's high-water mark (${Math.round(this.maxMemoryRatio * 100)}% of maxmemory): ${describeMemory(memory)}. New work is refused so that workers can drain the queues; retry when they have, or raise maxmemory`,
        memory,
      );
    }
    const max = this.options.maxBacklog;
    if (queue && max !== undefined) {
      const backlog = await this.cached(
        this.backlogs.get(queue.name),
        async () => {
          const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed');
          return Object.values(counts).reduce((a, b) => a + b, 0);
        },
        (e) => this.backlogs.set(queue.name, e),
      );
      if (backlog >= max) {
        throw new NoHeadroomError(
          `queue ${queue.name} holds ${backlog} jobs not yet run, at the producer's backlog limit (maxBacklog ${max}). New work is refused until the workers drain it`,
          undefined,
        );
      }
    }
  }

  private cached<T>(
    entry: { at: number; value: Promise<T> } | undefined,
    read: () => Promise<T>,
    store: (e: { at: number; value: Promise<T> }) => void,
  ): Promise<T> {
    if (entry && Date.now() - entry.at < this.refreshMs) return entry.value;
    const fresh = { at: Date.now(), value: read() };
    // A failed read is not kept: the next check reads again.
    fresh.value.catch(() => store({ at: 0, value: fresh.value }));
    store(fresh);
    return fresh.value;
  }
}
