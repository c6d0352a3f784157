import type { Logger } from '@hfq/shared';
import type { Job as BullJob, Worker } from 'bullmq';

/**
 * The log lines of a job's failures and re-deliveries, from the BullMQ worker's events:
 *
 * - an attempt that failed with attempts left: `attempt N of M failed, retrying in X s` (warn);
 *   BullMQ has already moved the job to `delayed` for its backoff (or back to `wait`);
 * - the failure that ends the job (no attempt left, or an unrecoverable error): `job failed` (error);
 * - a job whose worker stopped renewing its lock (killed, frozen, cut from Redis), found by a
 *   stalled check and put back to wait: warn.
 *
 * Jobs handed back without using an attempt (a 429 pause, a hold, a graceful shutdown) do not
 * reach `failed`: BullMQ moves them before it.
 */
export function logJobOutcomes(worker: Worker, logger: Logger, account: string): void {
  worker.on('failed', (job, err) => {
    const reason = err.message;
    if (!job) {
      logger.error({ account, reason }, 'job failed');
      return;
    }
    const retry = retryOf(job, err);
    if (retry) {
      logger.warn(
        {
          account,
          jobId: job.id,
          attempt: job.attemptsMade,
          attempts: retry.attempts,
          delayMs: retry.delayMs,
          reason,
        },
        `attempt ${job.attemptsMade} of ${retry.attempts} failed, retrying ${retry.delayMs > 0 ? `in ${seconds(retry.delayMs)}` : 'now'}`,
      );
      return;
    }
    logger.error({ account, jobId: job.id, attemptsMade: job.attemptsMade, reason }, 'job failed');
  });
  worker.on('stalled', (jobId) => {
    logger.warn({ account, jobId }, 'job re-delivered after its worker stopped renewing its lock');
  });
}

/**
 * Whether BullMQ retries the job, read after its move (`failed` comes after it): a finished job
 * (`finishedOn`) failed for good; so did an unrecoverable one, or one with no attempt left.
 * `attemptsMade` already counts the attempt that just failed; `delay` is the backoff it set.
 */
function retryOf(job: BullJob, err: Error): { attempts: number; delayMs: number } | undefined {
  const attempts = job.opts.attempts ?? 1;
  if (job.finishedOn !== undefined) return undefined;
  if (err.name === 'UnrecoverableError') return undefined;
  if (job.attemptsMade >= attempts) return undefined;
  return { attempts, delayMs: job.opts.backoff !== undefined ? (job.delay ?? 0) : 0 };
}

/** 1500 → "1.5 s", 12000 → "12 s". */
function seconds(ms: number): string {
  const s = ms / 1000;
  return `${s < 10 ? Number(s.toFixed(1)) : Math.round(s)} s`;
}
