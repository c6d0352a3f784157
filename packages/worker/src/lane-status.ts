import {
  type DomainLimiter,
  type LaneId,
  laneProvider,
  type RedisClient,
  readLanes,
} from '@hfq/shared/internal';
import type { Queue } from 'bullmq';
import { holdKey } from './account-hold.js';

/**
 * What `hfq status`, the status page and the progress line show per lane of an account (see
 * docs/architecture.md, "Every route its own lane"): its backlog, whether it is held and why, and
 * how much longer its router domain waits for a stated wait (`Retry-After`).
 */
export interface LaneStatus {
  lane: LaneId;
  /** Jobs waiting, prioritized, delayed and active in the lane (absent in a run-state reading). */
  counts?: Record<string, number>;
  /** The lane's queue is paused: held by hfq (`holdReason`) or by an operator. */
  paused: boolean;
  holdReason: string | undefined;
  /** The lane's router domain waits this much longer for a stated wait, ms. */
  pausedForMs: number;
}

export interface LaneStatusDeps {
  redis: RedisClient;
  prefix: string;
  limiter: DomainLimiter;
  queueOf(accountId: string, lane: LaneId): Queue;
}

/** The router domain of a lane: an explicit provider's own (route-selection.ts), else the account's. */
export function laneRouterDomain(routerDomain: string, lane: LaneId): string {
  const provider = laneProvider(lane);
  return provider === undefined ? routerDomain : `${routerDomain}.${provider}`;
}

/** Every lane of the account in the registry (the router lane always), with counts when asked. */
export async function readLaneStatuses(
  deps: LaneStatusDeps,
  accountId: string,
  routerDomain: string | undefined,
  withCounts: boolean,
): Promise<LaneStatus[]> {
  const lanes = [...(await readLanes(deps.redis, deps.prefix, accountId)).keys()].sort();
  return Promise.all(
    lanes.map(async (lane): Promise<LaneStatus> => {
      const queue = deps.queueOf(accountId, lane);
      const [paused, holdReason, domain, counts] = await Promise.all([
        queue.isPaused(),
        deps.redis.get(holdKey(deps.prefix, accountId, lane)),
        routerDomain ? deps.limiter.state(laneRouterDomain(routerDomain, lane)) : undefined,
        withCounts ? queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized') : undefined,
      ]);
      return {
        lane,
        ...(counts ? { counts } : {}),
        paused,
        holdReason: holdReason ?? undefined,
        pausedForMs: Math.max(0, (domain?.pausedUntil ?? 0) - Date.now()),
      };
    }),
  );
}
