import { sleep } from '@hfq/shared/internal';
import type { AccountContext } from '../account-context.js';
import { shouldSplitOnError, splitBatchChild } from '../batch-split.js';
import { estimateCost } from '../cost.js';
import { closeGate, reopenGate } from '../credit-gates.js';
import { handle429 } from '../handle-429.js';
import type { CallFailure } from '../inference-call.js';
import { forgetModelMapping } from '../mapping-cache.js';
import { applyStatedLimit } from '../stated-limit.js';
import { requeueAfter } from './choose-target.js';
import { type Admission, endRun, type JobRun } from './route.js';
import type { Target } from './target.js';

/**
 * A request admitted on a permit: the HF router (`router-route.ts`) or a provider key
 * (`provider-key-route.ts`), and how those routes react to an answer, by its class (`errors.ts`):
 *
 * - a paid answer: the closed gate it probed reopens, its cost goes to the spend ledger, the
 *   upstream's stated limit is applied;
 * - `throttle` (a 429): the domain learns from it (`handle-429.ts`); a stated wait requeues the
 *   job at the head of its lane, otherwise this job alone retries shortly in the same run;
 * - `credits`, `hold` (402, 401/403): the route's gate closes (`credit-gates.ts`) and the job
 *   fails over in the same run, using no attempt;
 * - `fail`: a batch child too large splits; a model a key's provider does not serve tries the
 *   next key; anything else fails the job now;
 * - anything else (a 5xx, a timeout): a retry that uses an attempt.
 */
export function permitAdmission(
  ctx: AccountContext,
  run: JobRun,
  target: Extract<Target, { kind: 'go' }>,
): Admission {
  const { route, domain, permit } = target;
  const job = run.data.job;
  const admittedAt = performance.now();
  // A request leaving later than this after its permit has its send time corrected in the limiter.
  const lateSendMs = ctx.limiter.lateSendToleranceMs(domain);
  let lateSend: Promise<void> | undefined;
  return {
    request: {
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
    },

    async answered(outcome) {
      await lateSend;
      if (target.probe) await reopenGate(ctx, route, domain);
      const costUsd = estimateCost(ctx.prices, job, outcome.provider, outcome.output);
      ctx.spend.record(ctx.scope, route.route, costUsd);
      await applyStatedLimit(ctx, domain, outcome.headers);
      return { provider: outcome.provider, costUsd };
    },

    async failed(failure: CallFailure) {
      await lateSend;
      const { error } = failure;
      switch (error.retryClass) {
        case 'throttle': {
          const { state } = run;
          state.upstream429s += 1;
          const throttle = await handle429({
            limiter: ctx.limiter,
            domain,
            sentAt: permit.sentAt,
            response: failure.response,
            body: failure.body,
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
          if (state.upstream429s > run.max429s) {
            endRun(
              ctx,
              'fail',
              `gave up after ${state.upstream429s} upstream 429s (max429s ${run.max429s}); last: ${error.message}`,
            );
          }
          state.throttledMs += waitMs;
          await run.bullJob.updateData({ ...run.data, state });
          if (throttle.kind === 'pause') return requeueAfter(ctx, throttle.pauseMs);
          // No stated wait: this job alone retries shortly, in the same run (see handle-429.ts).
          await sleep(throttle.delayMs, run.signal);
          return 'again';
        }
        case 'credits':
        case 'hold':
          await closeGate(ctx, route, target.provider, domain, error, run.excluded);
          return 'again'; // same job, same run: fail over without consuming an attempt
        case 'fail':
          // Batches: a coalesced child refused as too large splits into halves, each its own request.
          if (shouldSplitOnError(ctx, run.data, error)) return splitBatchChild(ctx, run.bullJob, run.data);
          if (error.code === 'HFQ_MODEL_NOT_SUPPORTED') {
            await forgetModelMapping(job.model);
            ctx.routes.forgetMapping(job.model);
            if (route.route === 'provider-key' && target.provider) {
              run.excluded.add(target.provider);
              return 'again';
            }
          }
          return endRun(ctx, 'fail', error.message);
        default:
          return endRun(ctx, 'retry', error.message);
      }
    },

    // A permit is used once it is taken: nothing to give back.
    async release() {},
  };
}
