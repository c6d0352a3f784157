import { contentJobId, type InferenceResult, isSampling } from '@hfq/shared';
import type { JobData } from '@hfq/shared/internal';
import type { Job as BullJob } from 'bullmq';
import type { AccountContext } from './account-context.js';

/**
 * Result reuse (see docs/architecture.md, 'Pay once'), for accounts that opt in
 * (`resultReuse`): before any route is tried, a job whose request was answered within the TTL is
 * completed from the account's result ledger with no upstream request, and the ledger of spend
 * counts it and what it saved; after a paid success, the result is stored for the next one. The
 * ledger key is the request's content identity without the caller's key: identical requests that
 * the caller kept apart on purpose still share one paid answer. Sampling jobs and jobs enqueued
 * with `unique: false` are new work every time: never answered, never stored.
 */

function reusable(ctx: AccountContext, data: JobData): boolean {
  return (
    ctx.results !== undefined && ctx.account.resultReuse !== undefined && !data.fresh && !isSampling(data.job)
  );
}

/** The job's result from the ledger, when it holds one: the job completes with it, costing nothing. */
export async function reuseResult(
  ctx: AccountContext,
  bullJob: BullJob,
  data: JobData,
): Promise<InferenceResult | undefined> {
  const settings = ctx.account.resultReuse;
  if (!settings || !ctx.results || !reusable(ctx, data)) return undefined;
  // A ledger that cannot be read (Redis busy or away) is no reason to fail the job: it runs.
  const stored = await ctx.results
    .read(ctx.account.id, contentJobId(data.job), settings)
    .catch(() => undefined);
  if (!stored) return undefined;
  ctx.spend.recordReuse(ctx.scope, stored.costUsd);
  ctx.logger.debug({ account: ctx.account.id, jobId: bullJob.id }, 'answered from the result ledger');
  return {
    output: stored.output,
    provider: stored.provider,
    route: stored.route,
    attempts: bullJob.attemptsMade,
    throttledMs: 0,
    latencyMs: 0,
    costUsd: 0,
    reused: true,
  };
}

/** Keep a paid result for the next identical request; returns `result` as it is. Never fails the job. */
export async function keepResult(
  ctx: AccountContext,
  data: JobData,
  result: InferenceResult,
): Promise<InferenceResult> {
  const settings = ctx.account.resultReuse;
  if (!settings || !ctx.results || !reusable(ctx, data) || result.reused) return result;
  const stored = {
    output: result.output,
    provider: result.provider,
    route: result.route,
    costUsd: result.costUsd,
  };
  await ctx.results.store(ctx.account.id, contentJobId(data.job), stored, settings).catch((err: unknown) => {
    ctx.logger.debug(
      { account: ctx.account.id, err: (err as Error).message },
      'result not kept in the ledger',
    );
  });
  return result;
}
