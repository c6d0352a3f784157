/**
 * The projection `hfq enqueue --deadline` prints before it enqueues (see docs/architecture.md,
 * "Deadlines and the batch route"): the account's backlog plus the run's jobs, against the
 * real-time capacity `hfq status` shows for the account, judged by the worker's own planner
 * (`planBatches`), so the CLI and the worker apply one rule.
 */
import type { GateStatus } from '@hfq/shared/internal';
import { batchApiTargetFor } from './batch-api-client.js';
import { type Plan, planBatches } from './batch-planner.js';
import { DEFAULT_BATCH_PRICE_SHARE, DEFAULT_BATCH_TURNAROUND_MS } from './batch-route-settings.js';
import { deadlineMarginMs, planningTurnaroundMs } from './planning-figures.js';

// The worker's defaults (batch-route-settings.ts): the CLI projects with what the planner plans with.

/** The parts of an account's status (`Admin.status`) the projection reads. */
export interface ProjectionStatus {
  account: string;
  /** Jobs by state, over the account's lanes. */
  counts: Record<string, number>;
  /** The router's learned rate, per `configuredRate.durationMs`. */
  learnedRate: number | undefined;
  configuredRate: { max: number; durationMs: number } | undefined;
  forecast: { throughputPerSecond: number };
  keys: { provider: string; credits: GateStatus }[];
}

export interface RealtimeCapacity {
  /** Requests per second. */
  rps: number;
  /**
   * `learned`: the router's learned rate; `configured`: its limit, before anything was learned;
   * `measured`: completions per second over the last minutes, when more than the router's rate
   * (provider keys and endpoints add to it).
   */
  source: 'learned' | 'configured' | 'measured';
}

/**
 * What the account's real-time routes deliver per second, from the figures `hfq status` shows: the
 * learned router rate (else the configured limit) per second, or the measured throughput when it is
 * higher. undefined when the account has neither (no worker ever described it).
 */
export function realtimeCapacity(status: ProjectionStatus): RealtimeCapacity | undefined {
  const window = status.configuredRate;
  const perWindow = status.learnedRate ?? window?.max;
  const routerRps = window && perWindow !== undefined ? perWindow / (window.durationMs / 1000) : undefined;
  const measured = status.forecast.throughputPerSecond;
  if (routerRps !== undefined && routerRps > 0 && routerRps >= measured)
    return { rps: routerRps, source: status.learnedRate !== undefined ? 'learned' : 'configured' };
  if (measured > 0) return { rps: measured, source: 'measured' };
  return undefined;
}

/** Providers of the account's keys that have a batch API and whose gate is open. */
export function batchProvidersOf(status: Pick<ProjectionStatus, 'keys'>): string[] {
  return status.keys
    .filter((k) => k.credits.state === 'ok' && batchApiTargetFor(k.provider) !== undefined)
    .map((k) => k.provider);
}

export interface ProjectionInput {
  status: ProjectionStatus;
  /**
   * The run's jobs for this account, their estimated tokens and real-time cost, and how many are
   * chat completions (the only task the batch route takes).
   */
  run: { jobs: number; tokens: number; costUsd: number; chatJobs: number };
  deadlineMs: number;
  preference: 'cost' | 'speed';
  nowMs: number;
}

export interface DeadlineProjection {
  account: string;
  /** Jobs already waiting in the account's lanes (waiting, prioritized, delayed), before the run's. */
  backlog: number;
  jobs: number;
  capacity: RealtimeCapacity | undefined;
  /** Providers of the account's keys a batch could go to (none when the run is not all chat completions). */
  batchProviders: string[];
  /** The run's estimated cost is known (else the plan's costs are nominal, to weigh routes only). */
  pricesKnown: boolean;
  /** The planner's verdict; undefined without a known capacity. */
  plan: Plan | undefined;
  deadlineMs: number;
}

/**
 * Project the account's backlog plus the run against the deadline. The backlog's jobs are priced
 * like the run's (hfq does not know their tokens); prices only weigh batch against real time, the
 * verdict (`plan.meetsDeadline`) rests on the capacity.
 */
export function projectDeadline(input: ProjectionInput): DeadlineProjection {
  const { status, run, nowMs, deadlineMs } = input;
  const c = status.counts;
  const backlog = (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0);
  const jobs = backlog + run.jobs;
  const capacity = realtimeCapacity(status);
  const batchable = run.jobs > 0 && run.chatJobs === run.jobs;
  const batchProviders = batchable ? batchProvidersOf(status) : [];
  const pricesKnown = run.tokens > 0 && run.costUsd > 0;
  const base = { account: status.account, backlog, jobs, capacity, batchProviders, pricesKnown, deadlineMs };
  if (!capacity) return { ...base, plan: undefined };
  // Nominal figures when nothing is known of tokens or prices: they still weigh batch against real time.
  const tokensPerJob = run.jobs > 0 && run.tokens > 0 ? run.tokens / run.jobs : 1;
  const realtimePricePerMTokens = pricesKnown ? (run.costUsd / run.tokens) * 1e6 : 1;
  const limits = batchProviders
    .map((provider) => batchApiTargetFor(provider)?.limits)
    .find((l) => l !== undefined);
  const plan = planBatches({
    nowMs,
    deadlineMs,
    preference: input.preference,
    marginMs: deadlineMarginMs(deadlineMs - nowMs),
    backlog: { jobs, tokens: jobs * tokensPerJob },
    realtimeRps: capacity.rps,
    realtimePricePerMTokens,
    batchPricePerMTokens: realtimePricePerMTokens * DEFAULT_BATCH_PRICE_SHARE,
    batchTurnaroundMs: planningTurnaroundMs([], DEFAULT_BATCH_TURNAROUND_MS),
    batchLimits: limits && { maxRequests: limits.maxRequests },
  });
  return { ...base, plan };
}
