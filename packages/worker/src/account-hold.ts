import {
  accountHoldKey,
  hashTag,
  type LaneId,
  operatorPauseKey,
  type RedisClient,
  ROUTER_LANE,
  stateKey,
  withLease,
} from '@hfq/shared/internal';
import type { Queue } from 'bullmq';

/**
 * Holding a lane of an account (see docs/architecture.md, "Holds"): its queue paused (every worker, every machine; nothing fails, nothing is
 * lost) and a hold key saying why. Holding and releasing are each two Redis steps (the key and
 * BullMQ's pause/resume), so both run under one lease per account: a release can never land
 * between a hold's two steps and leave a paused queue with no reason that nothing resumes. Only
 * the lane whose jobs have no route is held: the account's other lanes go on.
 */

/** Key marking that hfq (not an operator) paused a lane's queue, with the reason (the router lane by default). */
export function holdKey(prefix: string, accountId: string, lane: LaneId = ROUTER_LANE): string {
  return accountHoldKey(prefix, accountId, lane);
}

function holdLeaseKey(prefix: string, accountId: string): string {
  return stateKey(prefix, 'hold-lease', hashTag(accountId));
}

/**
 * The hold key lives this long after its last write; the supervisor of every running worker
 * rewrites it while the hold lasts. With no worker left it expires, and the first worker to
 * start resumes the queue (paused without a reason) and finds out again.
 */
export const HOLD_KEY_TTL_MS = 86_400_000;

export interface HoldTarget {
  redis: RedisClient;
  prefix: string;
  queue: Queue;
  accountId: string;
  /** The lane whose queue this is. @defaultValue the router lane (the account queue) */
  lane?: LaneId;
}

/** Test hook: runs between a hold's two steps, to force an interleaving. */
export interface HoldHooks {
  betweenKeyAndPause?: () => Promise<void>;
}

export async function holdAccount(target: HoldTarget, reason: string, hooks: HoldHooks = {}): Promise<void> {
  const { redis, prefix, queue, accountId, lane } = target;
  await withLease(redis, holdLeaseKey(prefix, accountId), async () => {
    await redis.set(holdKey(prefix, accountId, lane), reason, 'PX', HOLD_KEY_TTL_MS);
    await hooks.betweenKeyAndPause?.();
    await queue.pause();
  });
}

/** Lift the hold (when `mayRelease` agrees): the key goes and the queue resumes, in one step for every other process. */
export async function releaseHold(
  target: HoldTarget,
  mayRelease: () => Promise<boolean> = async () => true,
): Promise<boolean> {
  const { redis, prefix, queue, accountId, lane } = target;
  const key = holdKey(prefix, accountId, lane);
  // Most rounds find nothing held: a read, no lease.
  if ((await redis.exists(key)) === 0) return false;
  return withLease(redis, holdLeaseKey(prefix, accountId), async () => {
    if ((await redis.exists(key)) === 0) return false;
    if (!(await mayRelease())) {
      await redis.pexpire(key, HOLD_KEY_TTL_MS);
      return false;
    }
    await redis.del(key);
    // An operator's pause (`hfq queue pause`) outlasts the hold: only `hfq queue resume` lifts it.
    if ((await redis.exists(operatorPauseKey(prefix, accountId))) === 0) await queue.resume();
    return true;
  });
}

/**
 * A queue paused with no hold key nor an operator's pause (a hold key that expired, or a pause
 * from outside hfq) would stay paused for ever: nothing else resumes it. The supervisor resumes it; a cause that still
 * holds is found again by the next job, which holds the account anew, with its reason.
 */
export async function resumeIfPausedWithoutReason(target: HoldTarget): Promise<boolean> {
  const { redis, prefix, queue, accountId, lane } = target;
  if (!(await queue.isPaused())) return false;
  return withLease(redis, holdLeaseKey(prefix, accountId), async () => {
    if ((await redis.exists(holdKey(prefix, accountId, lane))) === 1) return false;
    if ((await redis.exists(operatorPauseKey(prefix, accountId))) === 1) return false;
    if (!(await queue.isPaused())) return false;
    await queue.resume();
    return true;
  });
}
