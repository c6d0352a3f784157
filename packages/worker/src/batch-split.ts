import type { HfqError, InferenceResult, Job } from '@hfq/shared';
import {
  type BatchChild,
  type BatchSplitOutput,
  type JobData,
  REQUEST_TOO_LARGE,
} from '@hfq/shared/internal';
import { type Job as BullJob, type JobsOptions, UnrecoverableError } from 'bullmq';
import type { AccountContext } from './account-context.js';

/**
 * Coalesced batch children that are too large for the upstream (see docs/architecture.md, "Batches are flows"). A child that carries
 * several items in one request and is refused as too large (413, 422, or a body that says so)
 * does not fail its items: it adds its two halves to the same batch, as children of the same
 * parent, and completes with a pointer to them. Each half is a job of its own, so each takes its
 * own permit, and a half still too large splits again, down to one item. The producer follows
 * the pointers when it reads results (the protocol: `batch-split.ts` in @hfq/shared).
 */

/** Smallest request (in upstream input elements) refused as too large, per account, model and provider. */
const refusedAt = new Map<string, { elements: number; atMs: number }>();
/** A learned size is forgotten after this long, in case the upstream raised its limit. */
const REFUSED_TTL_MS = 10 * 60_000;

/** True when the upstream refused the request for its size. */
export function isTooLarge(error: HfqError): boolean {
  const status = error.info.status;
  return (
    status === 413 || status === 422 || REQUEST_TOO_LARGE.test(error.info.upstreamMessage ?? error.message)
  );
}

/** A coalesced child (two items or more) refused as too large: split it rather than fail its items. */
export function shouldSplitOnError(ctx: AccountContext, data: JobData, error: HfqError): boolean {
  if (!data.batch || data.batch.count < 2 || !isTooLarge(error)) return false;
  const key = sizeKey(ctx, data.job);
  const elements = elementsOf(data.job);
  const known = refusedAt.get(key);
  if (!known || elements < known.elements) refusedAt.set(key, { elements, atMs: ctx.now() });
  return true;
}

/** A coalesced child at least as large as a request already refused in this process splits before calling. */
export function shouldPreSplit(ctx: AccountContext, data: JobData): boolean {
  if (!data.batch || data.batch.count < 2) return false;
  const key = sizeKey(ctx, data.job);
  const known = refusedAt.get(key);
  if (!known) return false;
  if (ctx.now() - known.atMs > REFUSED_TTL_MS) {
    refusedAt.delete(key);
    return false;
  }
  return elementsOf(data.job) >= known.elements;
}

/** Add the child's two halves to its batch (same parent, same options); complete with a pointer to them. */
export async function splitBatchChild(
  ctx: AccountContext,
  bullJob: BullJob,
  data: JobData,
): Promise<InferenceResult<BatchSplitOutput>> {
  const batch = data.batch;
  const parent = bullJob.parent;
  if (!batch || !parent?.id || bullJob.id === undefined) {
    throw new UnrecoverableError('only a batch child with a parent can split itself');
  }
  const halves = halve(data.job, batch);
  const opts = halfOptions(bullJob.opts, { id: parent.id, queue: parent.queueKey });
  const ids = halves.map((_, i) => `${bullJob.id}.${i}`);
  // Adding an existing id is ignored, so a split re-run after a crash adds nothing twice.
  await ctx.queue.addBulk(
    halves.map((half, i) => ({
      name: bullJob.name,
      data: {
        v: data.v,
        job: half.job,
        batch: half.batch,
        ...(data.deadlineAt !== undefined ? { deadlineAt: data.deadlineAt } : {}),
        ...(data.dueAt !== undefined ? { dueAt: data.dueAt } : {}),
        ...(data.preference !== undefined ? { preference: data.preference } : {}),
      } satisfies JobData,
      opts: { ...opts, jobId: ids[i] as string },
    })),
  );
  ctx.logger.info(
    {
      jobId: bullJob.id,
      account: ctx.account.id,
      batchId: batch.id,
      items: batch.count,
      halves: halves.map((h) => h.batch.count),
    },
    'batch child too large for the upstream: split in halves',
  );
  return {
    output: { hfqSplit: halves.map((half, i) => ({ id: ids[i] as string, count: half.batch.count })) },
    provider: 'none',
    route: 'hf-router',
    attempts: bullJob.attemptsMade + 1,
    throttledMs: data.state?.throttledMs ?? 0,
    latencyMs: 0,
    costUsd: 0,
  };
}

/** Split a coalesced job at an item boundary. */
function halve(job: Job, batch: BatchChild): { job: Job; batch: BatchChild }[] {
  const first = Math.floor(batch.count / 2);
  const counts = [first, batch.count - first];
  if (job.task === 'feature-extraction' && Array.isArray(job.inputs)) {
    const inputs = job.inputs;
    return counts.map((count, i) => {
      const start = i === 0 ? 0 : first;
      return {
        job: { ...job, inputs: inputs.slice(start, start + count) },
        batch: { id: batch.id, index: batch.index + start, count },
      };
    });
  }
  if (job.task === 'sentence-similarity' && batch.sizes) {
    const sizes = batch.sizes;
    const sentences = job.inputs.sentences;
    const cut = sizes.slice(0, first).reduce((sum, n) => sum + n, 0);
    return [
      {
        job: { ...job, inputs: { ...job.inputs, sentences: sentences.slice(0, cut) } },
        batch: { id: batch.id, index: batch.index, count: first, sizes: sizes.slice(0, first) },
      },
      {
        job: { ...job, inputs: { ...job.inputs, sentences: sentences.slice(cut) } },
        batch: {
          id: batch.id,
          index: batch.index + first,
          count: batch.count - first,
          sizes: sizes.slice(first),
        },
      },
    ];
  }
  throw new UnrecoverableError(`a ${job.task} batch child of ${batch.count} items cannot be split`);
}

/** The child's own options for its halves: priority, attempts, retention, and the batch's failure rule. */
function halfOptions(opts: JobsOptions, parent: { id: string; queue: string }): JobsOptions {
  const copy: JobsOptions = { parent, ignoreDependencyOnFailure: true };
  if (opts.priority !== undefined) copy.priority = opts.priority;
  if (opts.attempts !== undefined) copy.attempts = opts.attempts;
  if (opts.backoff !== undefined) copy.backoff = opts.backoff;
  if (opts.removeOnComplete !== undefined) copy.removeOnComplete = opts.removeOnComplete;
  if (opts.removeOnFail !== undefined) copy.removeOnFail = opts.removeOnFail;
  return copy;
}

function elementsOf(job: Job): number {
  if (job.task === 'feature-extraction') return Array.isArray(job.inputs) ? job.inputs.length : 1;
  if (job.task === 'sentence-similarity') return job.inputs.sentences.length;
  return 1;
}

function sizeKey(ctx: AccountContext, job: Job): string {
  return [ctx.account.id, job.task, job.model, job.provider ?? 'auto'].join('\u0000');
}
