import { type InferenceResult, ValidationError } from '@hfq/shared';
import { JOB_DATA, type JobData, parseOrThrow, scrubSecrets, sleep } from '@hfq/shared/internal';
import { type Job as BullJob, DelayedError, RateLimitError, UnrecoverableError } from 'bullmq';
import type { AccountContext } from './account-context.js';
import { batchAnswer } from './batch-route/batch-answer.js';
import { shouldPreSplit, shouldSplitOnError, splitBatchChild } from './batch-split.js';
import { estimateCost, estimateTokens } from './cost.js';
import { closeGate, reopenGate } from './credit-gates.js';
import { handle429 } from './handle-429.js';
import { CallFailure } from './inference-call.js';
import { forgetModelMapping, warmModelMapping } from './mapping-cache.js';
import { keepResult, reuseResult } from './result-reuse.js';
import { chooseTarget, requeueAfter } from './routes/choose-target.js';
import { routeViaEndpoint } from './routes/endpoint-route.js';
import { callRoute, routeResult } from './routes/route.js';
import { routingRule } from './routes/routing-policy.js';
import { applyStatedLimit } from './stated-limit.js';

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

function fail(ctx: AccountContext, message: string): never {
  throw new UnrecoverableError(scrubSecrets(message, ctx.routes.secrets()));
}

function retry(ctx: AccountContext, message: string): never {
  throw new Error(scrubSecrets(message, ctx.routes.secrets()));
}

/**
 * Run one job: take a permit, call the upstream, and react to the answer by class. 429s pause
 * the domain (`handle-429.ts`); exhausted credits fail over to a provider key in the same run;
 * only real failures consume attempts.
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
    fail(ctx, `job is for account "${job.account}", queue is "${ctx.account.id}"`);
  if (data.deadlineAt !== undefined && ctx.now() > data.deadlineAt) {
    fail(ctx, `deadline passed ${ctx.now() - data.deadlineAt} ms before the job could start`);
  }
  // Batches: a coalesced child as large as one the upstream refused splits before calling.
  if (shouldPreSplit(ctx, data)) return splitBatchChild(ctx, bullJob, data);
  // A job a provider batch holds: its answer, or back to waiting for it (batch-route/batch-answer.ts).
  const batched = await batchAnswer(ctx, ctx.batchRoute, bullJob, data, token);
  if (batched) return batched;
  const reused = await reuseResult(ctx, bullJob, data); // result-reuse.ts: before any route
  if (reused) return reused;
  const state = { upstream429s: data.state?.upstream429s ?? 0, throttledMs: data.state?.throttledMs ?? 0 };
  const excluded = new Set<string>();
  const tokens = estimateTokens(job);
  const max429s = ctx.account.max429s ?? DEFAULT_MAX_429S;

  // The Hub mapping lookup happens before the permit, not between permit and send (see docs/architecture.md, "Where a permit is taken").
  // A job only an endpoint serves never reaches the router: it needs no lookup.
  const endpointOnly = !routingRule(ctx.account.routing).router && ctx.endpoints.some((e) => e.serves(job));
  if (
    !endpointOnly &&
    !(job.task === 'chat-completion' && (job.provider === undefined || job.provider === 'auto'))
  ) {
    await warmModelMapping(job.model, ctx.account.hfToken, ctx.hubFetch);
  }
  for (;;) {
    // Jobs an Inference Endpoint serves go there, or to the router, by routing policy (endpoint-route.ts).
    const viaEndpoint = await routeViaEndpoint(ctx, bullJob, job, tokens, signal, token, state.throttledMs);
    if (viaEndpoint.kind === 'done') return keepResult(ctx, data, viaEndpoint.result);
    // The signal ends a permit wait at once when a graceful shutdown aborts the run (shutdown.ts).
    const target =
      viaEndpoint.kind === 'router'
        ? viaEndpoint.target
        : await chooseTarget(ctx, job, tokens, excluded, signal);
    if (target.kind === 'none') {
      if ((ctx.account.onNoKey ?? 'hold') === 'fail') fail(ctx, target.reason);
      if (target.scope === 'job') {
        // The account has keys, but none for this model: this job waits; the others go on.
        ctx.logger.warn(
          { account: ctx.account.id, jobId: bullJob.id, reason: target.reason },
          'job waits: no key serves its model',
        );
        await bullJob.moveToDelayed(ctx.now() + NO_KEY_FOR_MODEL_RECHECK_MS, token);
        throw new DelayedError();
      }
      await ctx.hold(target.reason);
      throw new RateLimitError();
    }
    const { route, domain, permit } = target;
    state.throttledMs += permit.waitedMs;

    const admittedAt = performance.now();
    // A request leaving later than this after its permit has its send time corrected in the limiter.
    const lateSendMs = ctx.limiter.lateSendToleranceMs(domain);
    let lateSend: Promise<void> | undefined;
    try {
      const request = {
        route: route.route,
        call: route,
        provider: target.provider,
        waitedMs: permit.waitedMs,
        onSend: (atMs: number) => {
          const lateMs = Math.round(atMs - admittedAt);
          if (lateMs > lateSendMs && lateSend === undefined) {
            lateSend = ctx.limiter.recordLateSend(domain, permit.uid, permit.sentAt + lateMs).catch(() => {});
          }
        },
      };
      // One span and one `upstream` event per answer, on every route (routes/route.ts).
      const outcome = await callRoute(ctx, job, request, signal);
      await lateSend;
      const provider = outcome.provider;
      if (target.probe) await reopenGate(ctx, route, domain);
      const costUsd = estimateCost(ctx.prices, job, provider, outcome.output);
      ctx.spend.record(ctx.scope, route.route, costUsd);
      await applyStatedLimit(ctx, domain, outcome.headers);
      return keepResult(
        ctx,
        data,
        routeResult(bullJob, {
          route: route.route,
          provider,
          outcome,
          throttledMs: state.throttledMs,
          costUsd,
        }),
      );
    } catch (err) {
      await lateSend;
      if (!(err instanceof CallFailure)) throw err;
      const error = err.error;
      switch (error.retryClass) {
        case 'throttle': {
          state.upstream429s += 1;
          const throttle = await handle429({
            limiter: ctx.limiter,
            domain,
            sentAt: permit.sentAt,
            response: err.response,
            body: err.body,
            nowMs: ctx.now(),
            random: Math.random,
            logger: ctx.logger,
            account: ctx.account.id,
            route: route.route,
          });
          const waitMs = throttle.kind === 'pause' ? throttle.pauseMs : throttle.delayMs;
          ctx.events.emit('throttle', {
            account: ctx.account.id,
            route: route.route,
            domain: domain.id,
            pauseMs: throttle.kind === 'pause' ? throttle.pauseMs : 0,
            newEpisode: throttle.newEpisode,
          });
          if (state.upstream429s > max429s) {
            fail(
              ctx,
              `gave up after ${state.upstream429s} upstream 429s (max429s ${max429s}); last: ${error.message}`,
            );
          }
          state.throttledMs += waitMs;
          await bullJob.updateData({ ...data, state });
          if (throttle.kind === 'pause') return requeueAfter(ctx, throttle.pauseMs);
          // No stated wait: this job alone retries shortly, in the same run (see handle-429.ts).
          await sleep(throttle.delayMs, signal);
          continue;
        }
        case 'credits':
        case 'hold':
          await closeGate(ctx, route, target.provider, domain, error, excluded);
          continue; // same job, same run: fail over without consuming an attempt
        case 'fail':
          // Batches: a coalesced child refused as too large splits into halves, each its own request.
          if (shouldSplitOnError(ctx, data, error)) return splitBatchChild(ctx, bullJob, data);
          if (error.code === 'HFQ_MODEL_NOT_SUPPORTED') {
            await forgetModelMapping(job.model);
            ctx.routes.forgetMapping(job.model);
            if (route.route === 'provider-key' && target.provider) {
              excluded.add(target.provider);
              continue;
            }
          }
          fail(ctx, error.message);
          break;
        default:
          retry(ctx, error.message);
      }
    }
  }
}
