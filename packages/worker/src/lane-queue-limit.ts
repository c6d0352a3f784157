import type { Logger } from '@hfq/shared';
import { isRedisOutOfMemory, type LaneId } from '@hfq/shared/internal';
import type { Queue } from 'bullmq';

/**
 * BullMQ's coarse limiter on a lane's queue: job starts per window, the queue's meta fields `max`
 * and `duration` (see docs/architecture.md, "Where a permit is taken"). It keeps a waiting lane's
 * surplus jobs in Redis rather than active, and gives `queue.rateLimit()` (a lane's wait,
 * `requeueAfter`) the `max` without which BullMQ ignores the wait.
 *
 * It costs three commands per job start inside BullMQ's scripts (`GET` and `INCR` of the limiter
 * key, `HEXISTS` of the job), so a lane's queue gets it the first time the lane has to wait, not
 * at start: a lane whose limit is far above what it sends never waits and pays nothing for it.
 * Once set it stays, and every worker keeps it at the lane's current start limit (a lane that
 * waited once is likely to wait again; an old value must not cap a raised limit).
 */
export class LaneQueueLimits {
  /** Lanes whose queue this process has checked: `set` (at the current limit) or `absent`. */
  private readonly known = new Map<LaneId, 'set' | 'absent'>();
  private readonly setting = new Map<LaneId, Promise<void>>();

  constructor(
    private readonly startLimit: (lane: LaneId) => Promise<{ max: number; durationMs: number }>,
    private readonly logger: Logger,
    private readonly accountId: string,
  ) {}

  /**
   * At a lane's start and on each supervisor round until it succeeds: a limit another worker set
   * (or an older version, which set it at every start) is brought to the current start limit; an
   * absent one stays absent. A full Redis refuses the write: the worker goes on, says why, and the
   * next round tries again.
   */
  async sync(lane: LaneId, queue: Queue): Promise<void> {
    if (this.known.has(lane)) return;
    try {
      if ((await queue.getGlobalRateLimit()) === null) this.known.set(lane, 'absent');
      else await this.apply(lane, queue);
    } catch (err) {
      if (!isRedisOutOfMemory(err)) throw err;
      this.logger.error(
        { account: this.accountId, err: (err as Error).message },
        'Redis is full (maxmemory reached, writes refused): the worker waits for room and keeps trying',
      );
    }
  }

  /** Before a lane's wait (`queue.rateLimit`): the lane's queue carries its limit (set once, then kept). */
  require(lane: LaneId, queue: Queue): Promise<void> {
    if (this.known.get(lane) === 'set') return Promise.resolve();
    let setting = this.setting.get(lane);
    if (!setting) {
      setting = this.apply(lane, queue).finally(() => this.setting.delete(lane));
      this.setting.set(lane, setting);
    }
    return setting;
  }

  /** A lane closed here: checked again when it starts again. */
  forget(lane: LaneId): void {
    this.known.delete(lane);
  }

  /**
   * Set the lane's limit, then read the start limit again: an operator's `hfq limit` that changed
   * the override between the read and the write found no limit on the queue and wrote none
   * (operator-actions.ts), so this write must not leave the old value behind.
   */
  private async apply(lane: LaneId, queue: Queue): Promise<void> {
    let limit = await this.startLimit(lane);
    for (;;) {
      await queue.setGlobalRateLimit(limit.max, limit.durationMs);
      const again = await this.startLimit(lane);
      if (again.max === limit.max && again.durationMs === limit.durationMs) break;
      limit = again;
    }
    this.known.set(lane, 'set');
  }
}
