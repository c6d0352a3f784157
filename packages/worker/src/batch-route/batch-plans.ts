/**
 * The planner's latest plan per lane and model of an account (see docs/architecture.md, "Deadlines
 * and the batch route"): written by each batch round, read by `hfq status` and the board.
 */
import { hashTag, type RedisClient, stateKey } from '@hfq/shared/internal';
import type { Plan } from './batch-planner.js';

/** The current plan of one lane and model, as a status view reads it (`readBatchPlans`). */
export interface BatchPlanSnapshot {
  lane: string;
  model: string;
  /** The provider whose key would take the batches (undefined: none can). */
  provider: string | undefined;
  atMs: number;
  deadlineMs: number;
  plan: Plan;
}

export function batchPlansKey(prefix: string, account: string): string {
  return stateKey(prefix, 'provider-batch-plans', hashTag(account));
}

/** The latest plan per lane and model of an account (for `hfq status` and the board). */
export async function readBatchPlans(
  redis: RedisClient,
  prefix: string,
  account: string,
): Promise<BatchPlanSnapshot[]> {
  const all = await redis.hgetall(batchPlansKey(prefix, account));
  return Object.values(all).map((raw) => JSON.parse(raw) as BatchPlanSnapshot);
}
