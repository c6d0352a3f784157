/**
 * The batch planner (see docs/architecture.md, "Deadlines and the batch route"): for one account
 * and model, how many of the backlog's jobs go to a provider batch and when each batch must be
 * given up (its hedge time), so that everything still finishes by the deadline, at the lowest cost.
 * A pure function of the figures it is given; call it again as they change.
 *
 * The rule. Let `available` be the time from now to the deadline less the margin, and `rps` the
 * real-time capacity. Real time alone needs `N / rps`. Any batched job must be able to fall back to
 * real time if its batch never finishes, so:
 *  - no deadline, preference `speed`, no batch route, or a batch not cheaper: all real time;
 *  - `N / rps > available`: the deadline cannot be kept even in real time: all real time, at once,
 *    and the plan says so (`meetsDeadline: false`);
 *  - else batch `B = min(N, (available − turnaround) × rps − committed)` jobs (committed: the
 *    unfinished jobs of batches already submitted), the rest in real time now. Batches are cut to
 *    the provider's limits; their hedge times are stacked back from the deadline: the last batch's
 *    is `deadline − margin − its jobs / rps`, each earlier one earlier by the later batches' jobs
 *    (and all before the committed batches). If every batch were stuck, cancelling each at its hedge
 *    time and running its jobs in real time still ends by `deadline − margin`.
 */

export interface PlanInput {
  nowMs: number;
  /** Epoch ms; undefined: no deadline. */
  deadlineMs: number | undefined;
  preference: 'cost' | 'speed';
  /** Kept free before the deadline: the cancel, the last downloads, a real-time rate that falls short. */
  marginMs: number;
  /** Jobs waiting for this account and model, and their estimated tokens. */
  backlog: { jobs: number; tokens: number };
  /** Requests per second the real-time routes deliver (all routes, as learned). Must be > 0. */
  realtimeRps: number;
  /** USD per million tokens. */
  realtimePricePerMTokens: number;
  batchPricePerMTokens: number;
  /** The turnaround to plan with: observed (a high percentile) or the configured estimate. */
  batchTurnaroundMs: number;
  /** The batch route's limits per batch; undefined when no key offers a batch API for the model. */
  batchLimits: { maxRequests: number; maxTokens?: number } | undefined;
  /** Unfinished jobs of batches already submitted, whose hedges still stand. @defaultValue `0` */
  committedJobs?: number;
  /** A smaller batch is not worth its overhead. @defaultValue `1` */
  minBatchJobs?: number;
}

export interface PlannedBatch {
  jobs: number;
  tokens: number;
  /** Epoch ms: cancel it then if it has not finished, and run what is left in real time. */
  hedgeAtMs: number;
  /** Epoch ms: when it is expected back, from the turnaround. */
  expectedDoneAtMs: number;
}

export type PlanReason =
  | 'no-deadline'
  | 'speed'
  | 'no-batch-route'
  | 'batch-not-cheaper'
  | 'deadline-unreachable'
  | 'no-room-for-batch'
  | 'batch';

export interface Plan {
  realtimeJobs: number;
  batches: PlannedBatch[];
  reason: PlanReason;
  /** Epoch ms when all of the backlog is expected done. */
  projectedFinishMs: number;
  /** Whether the projected finish is within the deadline (always true without a deadline). */
  meetsDeadline: boolean;
  costAllRealtimeUsd: number;
  plannedCostUsd: number;
}

export function planBatches(input: PlanInput): Plan {
  const { nowMs, deadlineMs, backlog } = input;
  if (!(input.realtimeRps > 0) || !Number.isFinite(input.realtimeRps)) {
    throw new RangeError(`realtimeRps must be a positive number, got ${input.realtimeRps}`);
  }
  if (backlog.jobs < 0 || backlog.tokens < 0) throw new RangeError('the backlog cannot be negative');
  const rpms = input.realtimeRps / 1000;
  const committed = input.committedJobs ?? 0;
  const tokensPerJob = backlog.jobs > 0 ? backlog.tokens / backlog.jobs : 0;
  const costAllRealtimeUsd = (backlog.tokens * input.realtimePricePerMTokens) / 1e6;
  const realtimeFinish = nowMs + (backlog.jobs + committed) / rpms;

  const allRealtime = (reason: PlanReason): Plan => ({
    realtimeJobs: backlog.jobs,
    batches: [],
    reason,
    projectedFinishMs: realtimeFinish,
    meetsDeadline: deadlineMs === undefined || realtimeFinish <= deadlineMs,
    costAllRealtimeUsd,
    plannedCostUsd: costAllRealtimeUsd,
  });

  if (deadlineMs === undefined) return allRealtime('no-deadline');
  if (input.preference === 'speed') return allRealtime('speed');
  const available = deadlineMs - input.marginMs - nowMs;
  if ((backlog.jobs + committed) / rpms > available) return allRealtime('deadline-unreachable');
  if (!input.batchLimits) return allRealtime('no-batch-route');
  if (input.batchPricePerMTokens >= input.realtimePricePerMTokens) return allRealtime('batch-not-cheaper');

  const room = Math.floor((available - input.batchTurnaroundMs) * rpms) - committed;
  const batched = Math.max(0, Math.min(backlog.jobs, room));
  if (batched < Math.max(1, input.minBatchJobs ?? 1)) return allRealtime('no-room-for-batch');

  const sizes = cut(batched, tokensPerJob, input.batchLimits);
  const latest = deadlineMs - input.marginMs - committed / rpms;
  const expectedDoneAtMs = nowMs + input.batchTurnaroundMs;
  let after = 0;
  const batches: PlannedBatch[] = [];
  for (let index = sizes.length - 1; index >= 0; index--) {
    const jobs = sizes[index] as number;
    after += jobs;
    batches.unshift({
      jobs,
      tokens: jobs * tokensPerJob,
      hedgeAtMs: latest - after / rpms,
      expectedDoneAtMs,
    });
  }
  const realtimeJobs = backlog.jobs - batched;
  const projectedFinishMs = Math.max(nowMs + realtimeJobs / rpms, expectedDoneAtMs);
  return {
    realtimeJobs,
    batches,
    reason: 'batch',
    projectedFinishMs,
    meetsDeadline: projectedFinishMs <= deadlineMs,
    costAllRealtimeUsd,
    plannedCostUsd:
      (realtimeJobs * tokensPerJob * input.realtimePricePerMTokens +
        batched * tokensPerJob * input.batchPricePerMTokens) /
      1e6,
  };
}

/** `jobs` in as few batches as the limits allow, sizes as equal as possible. */
function cut(jobs: number, tokensPerJob: number, limits: NonNullable<PlanInput['batchLimits']>): number[] {
  const byTokens =
    limits.maxTokens && tokensPerJob > 0 ? Math.ceil((jobs * tokensPerJob) / limits.maxTokens) : 1;
  const count = Math.max(1, Math.ceil(jobs / limits.maxRequests), byTokens);
  const base = Math.floor(jobs / count);
  return Array.from({ length: count }, (_, index) => base + (index < jobs % count ? 1 : 0));
}
