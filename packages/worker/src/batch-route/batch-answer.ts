/**
 * A job's run asks its batch first (see docs/architecture.md, "Deadlines and the batch route"),
 * before any route, as `reuseResult` asks the result ledger: a job its batch answered completes
 * from the stored answer with no upstream call (pay once); a job whose batch is still running
 * goes back to waiting (no attempt used) until its hedge time, or a little while once the hedge
 * time passed and the cancel is on its way; a failed or unfinished line runs in real time.
 */
import type { InferenceResult } from '@hfq/shared';
import type { JobData } from '@hfq/shared/internal';
import { type Job as BullJob, DelayedError } from 'bullmq';
import type { AccountContext } from '../account-context.js';
import { estimateCost } from '../cost.js';
import type { BatchStores } from './batch-job-store.js';
import { batchPriceShare } from './batch-route-settings.js';

/** Past its hedge time, a job whose batch is being cancelled looks again after this long. */
export const CANCEL_RECHECK_MS = 1_000;

/**
 * The job's result from its batch, or undefined to run it in real time. Throws `DelayedError`
 * after moving the job back to delayed while its batch may still answer it.
 */
export async function batchAnswer(
  ctx: AccountContext,
  stores: BatchStores | undefined,
  bullJob: BullJob,
  data: JobData,
  token: string | undefined,
): Promise<InferenceResult | undefined> {
  if (!stores || data.dueAt === undefined || !bullJob.id) return undefined;
  const account = ctx.account.id;
  const jobId = bullJob.id;
  const recordId = await stores.jobs.recordOf(account, jobId);
  if (!recordId) return undefined;
  const answer = await stores.jobs.answerOf(account, jobId);
  if (answer?.kind === 'output') {
    // Kept until its TTL: a run that completes from it again after a crash pays nothing either.
    const costUsd =
      estimateCost(ctx.prices, data.job, answer.provider, answer.output) * batchPriceShare(ctx.account);
    ctx.spend.recordBatchLine(ctx.scope, costUsd);
    return {
      output: answer.output,
      provider: answer.provider,
      route: 'provider-batch',
      attempts: bullJob.attemptsMade + 1,
      throttledMs: 0,
      latencyMs: 0,
      costUsd,
    };
  }
  if (answer) {
    if (answer.kind === 'failed') {
      ctx.logger.info({ account, jobId, code: answer.code }, 'batch line failed: the job runs in real time');
    }
    await stores.jobs.forget(account, jobId);
    return undefined;
  }
  const record = await stores.records.get(account, recordId);
  // No record (expired) or one already collected without an answer for this job: real time.
  if (!record || record.state === 'collected') {
    await stores.jobs.forget(account, jobId);
    return undefined;
  }
  const nowMs = ctx.now();
  const waitUntil =
    nowMs < record.hedgeAtMs && record.state !== 'cancelling' ? record.hedgeAtMs : nowMs + CANCEL_RECHECK_MS;
  await bullJob.moveToDelayed(waitUntil, token);
  throw new DelayedError();
}
