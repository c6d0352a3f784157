import { type InferenceResult, ValidationError } from '@hfq/shared';
import { JOB_DATA, type JobData, parseOrThrow } from '@hfq/shared/internal';
import { type Job as BullJob, DelayedError, RateLimitError, UnrecoverableError } from 'bullmq';
import type { AccountContext } from './account-context.js';
import { batchAnswer } from './batch-route/batch-answer.js';
import { shouldPreSplit, splitBatchChild } from './batch-split.js';
import { estimateTokens } from './cost.js';
import { CallFailure } from './inference-call.js';
import { warmModelMapping } from './mapping-cache.js';
import { keepResult, reuseResult } from './result-reuse.js';
import { chooseTarget } from './routes/choose-target.js';
import { EndpointWay } from './routes/endpoint-route.js';
import { permitAdmission } from './routes/permit-admission.js';
import { type Admission, callRoute, endRun, type JobRun, routeResult } from './routes/route.js';
import { routingRule } from './routes/routing-policy.js';

const DEFAULT_MAX_429S = 50;
/** A job whose model no provider key serves waits this long before looking again (no attempt used). */
const NO_KEY_FOR_MODEL_RECHECK_MS = 5 * 60_000;

/** The job data, validated: a foreign or corrupted job fails at once with the reason, never retried. */
function readJobData(raw: unknown): JobData {
  try {
    return parseOrThrow(JOB_DATA, raw, 'job data');
  } catch (err) {
    if (err instanceof ValidationError) throw new UnrecoverableError(err.message.slice(0, 2000));
    throw err;
  }
}

/**
 * Run one job: one loop over the routes (`routes/`): admit the job on a route (a permit, an
 * endpoint's slot), call it, and let that route react to the answer by class. 429s pause the
 * domain (`handle-429.ts`); exhausted credits fail over to a provider key in the same run; only
 * real failures consume attempts.
 */
export async function processJob(
  ctx: AccountContext,
  bullJob: BullJob,
  token: string | undefined,
  signal: AbortSignal,
): Promise<InferenceResult> {
  const data = readJobData(bullJob.data);
  const job = data.job;
  if (job.account !== ctx.account.id)
    endRun(ctx, 'fail', `job is for account "${job.account}", queue is "${ctx.account.id}"`);
  if (data.deadlineAt !== undefined && ctx.now() > data.deadlineAt) {
    endRun(ctx, 'fail', `deadline passed ${ctx.now() - data.deadlineAt} ms before the job could start`);
  }
  // Batches: a coalesced child as large as one the upstream refused splits before calling.
  if (shouldPreSplit(ctx, data)) return splitBatchChild(ctx, bullJob, data);
  // A job a provider batch holds: its answer, or back to waiting for it (batch-route/batch-answer.ts).
  const batched = await batchAnswer(ctx, ctx.batchRoute, bullJob, data, token);
  if (batched) return batched;
  const reused = await reuseResult(ctx, bullJob, data); // result-reuse.ts: before any route
  if (reused) return reused;
  const run: JobRun = {
    bullJob,
    data,
    token,
    signal,
    tokens: estimateTokens(job),
    excluded: new Set<string>(),
    state: { upstream429s: data.state?.upstream429s ?? 0, throttledMs: data.state?.throttledMs ?? 0 },
    max429s: ctx.account.max429s ?? DEFAULT_MAX_429S,
  };
  // Jobs an Inference Endpoint serves try it, or the router, by routing policy (endpoint-route.ts).
  const endpointWay = EndpointWay.for(ctx, run);

  // The Hub mapping lookup happens before the permit, not between permit and send (see docs/architecture.md, "Where a permit is taken").
  // A job only an endpoint serves never reaches the router: it needs no lookup.
  const endpointOnly = !routingRule(ctx.account.routing).router && endpointWay !== undefined;
  if (
    !endpointOnly &&
    !(job.task === 'chat-completion' && (job.provider === undefined || job.provider === 'auto'))
  ) {
    await warmModelMapping(job.model, ctx.account.hfToken, ctx.hubFetch);
  }
  // The route ladder: admit on a route, call it, and let that route react to the answer; a
  // failover, a short 429 wait or a busy endpoint admits the job again, in the same run.
  for (;;) {
    const admission = await admit(ctx, run, endpointWay);
    let result: InferenceResult | undefined;
    try {
      // One span and one `upstream` event per answer, on every route (routes/route.ts).
      const outcome = await callRoute(ctx, job, admission.request, signal);
      const answered = await admission.answered(outcome);
      result = routeResult(bullJob, {
        route: admission.request.route,
        provider: answered.provider,
        outcome,
        throttledMs: run.state.throttledMs,
        costUsd: answered.costUsd,
      });
    } catch (err) {
      if (!(err instanceof CallFailure)) throw err;
      const next = await admission.failed(err);
      if (next !== 'again') return next;
    } finally {
      await admission.release(result !== undefined);
    }
    if (result) return keepResult(ctx, data, result);
  }
}

/**
 * The job's next admission: its endpoint's slot or a router permit by the routing policy
 * (`endpoint-route.ts`), else the router while credits last, else a provider key
 * (`choose-target.ts`). With no route, the job (or its lane) waits, or fails under `onNoKey: fail`.
 */
async function admit(
  ctx: AccountContext,
  run: JobRun,
  endpointWay: EndpointWay | undefined,
): Promise<Admission> {
  const viaEndpoint = endpointWay ? await endpointWay.admit() : { kind: 'skip' as const };
  if (viaEndpoint.kind === 'endpoint') return viaEndpoint.admission;
  // The signal ends a permit wait at once when a graceful shutdown aborts the run (shutdown.ts).
  const target =
    viaEndpoint.kind === 'router'
      ? viaEndpoint.target
      : await chooseTarget(ctx, run.data.job, run.tokens, run.excluded, run.signal);
  if (target.kind === 'none') {
    if ((ctx.account.onNoKey ?? 'hold') === 'fail') endRun(ctx, 'fail', target.reason);
    if (target.scope === 'job') {
      // The account has keys, but none for this model: this job waits; the others go on.
      ctx.logger.warn(
        { account: ctx.account.id, jobId: run.bullJob.id, reason: target.reason },
        'job waits: no key serves its model',
      );
      await run.bullJob.moveToDelayed(ctx.now() + NO_KEY_FOR_MODEL_RECHECK_MS, run.token);
      throw new DelayedError();
    }
    await ctx.hold(target.reason);
    throw new RateLimitError();
  }
  run.state.throttledMs += target.permit.waitedMs;
  return permitAdmission(ctx, run, target);
}
