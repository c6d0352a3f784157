/**
 * What `hfq status`, its JSON and the board show of an account's provider batches (see README,
 * "Deadlines and the batch route"): one row per batch not yet collected, read from the batch
 * records, never the key (a record holds only the key's domain id, and that is not shown either).
 */
import type { RedisClient } from '@hfq/shared/internal';
import { readBatchPlans } from './batch-plans.js';
import { type BatchRecordState, BatchRecordStore } from './batch-record-store.js';
import { DEFAULT_BATCH_PRICE_SHARE } from './batch-route-settings.js';

/** One provider batch of an account, as the operator's views show it. */
export interface AccountBatchRow {
  /** hfq's record id (`pb-…`). */
  id: string;
  provider: string;
  state: BatchRecordState;
  /** The provider's batch id, once created. */
  batchId: string | undefined;
  jobs: number;
  /** Epoch ms: cancelled then if unfinished, its rest run in real time. */
  hedgeAtMs: number;
  /** Epoch ms: the deadline its jobs carry. */
  deadlineMs: number;
  createdAtMs: number;
}

/** The account's batches not yet collected, soonest hedge first. */
export async function readAccountBatchRows(
  redis: RedisClient,
  prefix: string,
  account: string,
): Promise<AccountBatchRow[]> {
  const records = await new BatchRecordStore(redis, prefix).openRecords(account);
  return records
    .map((r) => ({
      id: r.id,
      provider: r.provider,
      state: r.state,
      batchId: r.batchId,
      jobs: r.jobIds.length,
      hedgeAtMs: r.hedgeAtMs,
      deadlineMs: r.deadlineMs,
      createdAtMs: r.createdAtMs,
    }))
    .sort((a, b) => a.hedgeAtMs - b.hedgeAtMs || a.id.localeCompare(b.id));
}

/**
 * Money the batches save against running their jobs in real time: their jobs at the real-time
 * cost per request (this month's average on the route in use) less the batch price. undefined
 * while that cost is unknown (nothing paid yet this month).
 */
export function batchSavingUsd(
  rows: readonly AccountBatchRow[],
  costPerRequestUsd: number | undefined,
): number | undefined {
  if (costPerRequestUsd === undefined || rows.length === 0) return undefined;
  const jobs = rows.reduce((n, r) => n + r.jobs, 0);
  return jobs * costPerRequestUsd * (1 - DEFAULT_BATCH_PRICE_SHARE);
}

/** The planner's current split of one lane and model with a deadline, as the operator's views show it. */
export interface AccountBatchPlanRow {
  lane: string;
  model: string;
  /** The provider whose key takes the batches (undefined: none can, all real time). */
  provider: string | undefined;
  /** Jobs planned in real time, and in provider batches. */
  realtimeJobs: number;
  batchedJobs: number;
  batches: number;
  /** Epoch ms. */
  projectedFinishMs: number;
  deadlineMs: number;
  meetsDeadline: boolean;
  /** The plan's cost, and the same jobs all in real time (estimates). */
  plannedCostUsd: number;
  costAllRealtimeUsd: number;
  /** Epoch ms: when the planner made it. */
  atMs: number;
}

/** A plan older than this (no round since: no worker, or nothing parked) is not shown. */
export const PLAN_SHOWN_FOR_MS = 10 * 60_000;

/** The account's current plans, per lane and model, soonest deadline first. */
export async function readAccountBatchPlanRows(
  redis: RedisClient,
  prefix: string,
  account: string,
  nowMs: number,
): Promise<AccountBatchPlanRow[]> {
  return (await readBatchPlans(redis, prefix, account))
    .filter((p) => nowMs - p.atMs <= PLAN_SHOWN_FOR_MS)
    .map((p) => {
      const batchedJobs = p.plan.batches.reduce((n, b) => n + b.jobs, 0);
      return {
        lane: p.lane,
        model: p.model,
        provider: p.provider,
        realtimeJobs: p.plan.realtimeJobs,
        batchedJobs,
        batches: p.plan.batches.length,
        projectedFinishMs: p.plan.projectedFinishMs,
        deadlineMs: p.deadlineMs,
        meetsDeadline: p.plan.meetsDeadline,
        plannedCostUsd: p.plan.plannedCostUsd,
        costAllRealtimeUsd: p.plan.costAllRealtimeUsd,
        atMs: p.atMs,
      };
    })
    .sort((a, b) => a.deadlineMs - b.deadlineMs || a.model.localeCompare(b.model));
}
