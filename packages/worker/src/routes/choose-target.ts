import { accountBudgetUsd, budgetSetting, type JobData } from '@hfq/shared/internal';
import { RateLimitError } from 'bullmq';
import type { AccountContext } from '../account-context.js';
import { admitProviderKey, providerKeyTarget } from './provider-key-route.js';
import { acquireRouterPermit, probeRouter, routerTarget } from './router-route.js';
import type { Target } from './target.js';

export type { Target } from './target.js';

/**
 * Where a job's next request goes, with its permit: the HF router while the account's credits
 * and budget last (the credit gate is checked inside the permit script), else the first usable
 * provider key (README, "How the rate limit holds", Credits).
 */

/** The shortest wait of a job put back (ms): longer than the step that puts it back takes. */
const MIN_REQUEUE_WAIT_MS = 100;

/**
 * Re-queue the job at the head of its lane's queue after `ms`, consuming no attempt: the lane
 * waits (BullMQ's limiter on the lane queue, set on the lane's first wait), the account's other
 * lanes go on.
 *
 * BullMQ puts a job with a priority (batch items, or a `priority` option) back without writing
 * the queue's marker, so a lane worker blocked on the marker would only look again at the end of
 * its idle block (`IDLE_BLOCK_SECONDS`), long after the wait. The marker written here wakes it:
 * it finds the lane rate-limited, sleeps out the wait, then takes the job.
 */
export async function requeueAfter(ctx: AccountContext, ms: number): Promise<never> {
  await ctx.limitQueue();
  // The marker goes before BullMQ puts the job back (after the throw): the lane's limit must
  // outlive that step, or the woken worker finds nothing, and blocks again for the idle block.
  await ctx.queue.rateLimit(Math.max(MIN_REQUEUE_WAIT_MS, Math.ceil(ms)));
  // (Only a wake-up: a marker Redis could not take leaves the job to the end of the idle block.)
  await ctx.wakeLane().catch(() => {});
  throw new RateLimitError();
}

/** The router while the account's credits last, else the first usable provider key. Waits for the permit. */
export async function chooseTarget(
  ctx: AccountContext,
  job: JobData['job'],
  /** The job's estimated token cost (`estimateTokens`), for token windows. */
  tokens: number,
  excluded: Set<string>,
  signal?: AbortSignal,
): Promise<Target> {
  const { account } = ctx;
  const nowMs = ctx.now();
  const budgetUsd = accountBudgetUsd(account);
  const router = await acquireRouterPermit(ctx, job, tokens, signal);
  if (router.kind === 'admitted') return routerTarget(ctx, job, router);
  if (router.kind === 'wait') return requeueAfter(ctx, router.waitMs);
  if (router.kind === 'gate') {
    const probe = await probeRouter(ctx, job, tokens, signal);
    if (probe) return probe;
  }
  const why =
    router.kind === 'budget'
      ? `estimated HF spend $${router.spentUsd.toFixed(4)} reached the monthly budget $${budgetUsd}, set by ${budgetSetting(account)}: raise or unset it to go on through the router`
      : `HF router closed: ${router.reason}`;

  const candidates = await ctx.routes.candidates(job, excluded);
  for (const candidate of candidates) {
    // A key out of credits is probed once per interval, all workers together (provider-key-route.ts).
    const { permit, probe } = await admitProviderKey(ctx, candidate, tokens, nowMs, signal);
    if (permit.kind === 'admitted') return providerKeyTarget(candidate, permit, probe);
    if (permit.kind === 'wait') return requeueAfter(ctx, permit.waitMs);
    if (permit.kind === 'budget') {
      return {
        kind: 'none',
        scope: 'account',
        reason: `${why}; provider-key spend reached providerBudgetUsd $${account.providerBudgetUsd}`,
      };
    }
    excluded.add(candidate.provider);
  }
  const keys = Object.keys(account.providerKeys ?? {});
  // Keys exist and none was refused, but none serves this model: only this job has to wait.
  const scope = candidates.length === 0 && keys.some((k) => !excluded.has(k)) ? 'job' : 'account';
  return {
    kind: 'none',
    scope,
    reason: `${why}; no usable provider key for ${job.model} (${job.task})${
      keys.length ? `: tried ${keys.join(', ')}` : ': the account has none'
    }`,
  };
}
