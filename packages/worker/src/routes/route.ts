import type { InferenceResult, Job } from '@hfq/shared';
import { type JobData, scrubSecrets } from '@hfq/shared/internal';
import { type Job as BullJob, UnrecoverableError } from 'bullmq';
import type { AccountContext } from '../account-context.js';
import { CallFailure, type CallOutcome, type CallRoute, callInference } from '../inference-call.js';
import { tracedUpstreamCall } from '../upstream-span.js';

/**
 * A route is one way a job's request goes upstream (see docs/architecture.md, "The request's
 * life"): the HF router (`router-route.ts`), a provider key (`provider-key-route.ts`) or an
 * Inference Endpoint (`endpoint-route.ts`). Each takes its own admission (a router or key
 * permit, an endpoint slot) and reacts to its own answers (`permit-admission.ts` for the router
 * and the keys, `endpoint-route.ts` for an endpoint) as an `Admission`; the call, its tracing
 * span, its `upstream` event and the result built from its answer are the same for all, here.
 * `process-job.ts` is one loop over them: admit, call, react. The answer's class comes from
 * `inference-call.ts`, which classifies through `errors.ts`.
 */
export type RouteName = 'hf-router' | 'provider-key' | 'endpoint';

/**
 * End a job's run with a message scrubbed of every secret the account's routes hold: `fail` now
 * (no attempt left to use), or `retry` (an attempt used, BullMQ's backoff).
 */
export function endRun(ctx: AccountContext, how: 'fail' | 'retry', message: string): never {
  const scrubbed = scrubSecrets(message, ctx.routes.secrets());
  throw how === 'fail' ? new UnrecoverableError(scrubbed) : new Error(scrubbed);
}

/** One job's run, as every route sees it: what it carries across admissions in the same run. */
export interface JobRun {
  bullJob: BullJob;
  data: JobData;
  /** The processor's lock token (to move the job to delayed). */
  token: string | undefined;
  signal: AbortSignal;
  /** The job's estimated token cost (`estimateTokens`), for token windows. */
  tokens: number;
  /** Provider keys this run found unusable (refused, or not serving the model). */
  excluded: Set<string>;
  /** What the job's attempts have cost so far, kept in its data across runs. */
  state: { upstream429s: number; throttledMs: number };
  /** 429s after which the job fails (`max429s`). */
  max429s: number;
}

/**
 * A request admitted on one route (a permit taken, a slot held), and how that route reacts to
 * its answer. `process-job.ts` calls `request` through `callRoute`, then `answered` or `failed`,
 * then always `release`.
 */
export interface Admission {
  readonly request: RouteRequest;
  /** The route's bookkeeping of a paid answer; says who answered and what it cost. */
  answered(outcome: CallOutcome): Promise<{ provider: string; costUsd: number }>;
  /**
   * The route's reaction to a failed call, by the answer's class: `again` to admit the job again
   * in the same run (after a wait, a failover, a busy endpoint), a result that ends the job (a
   * batch split), or it throws what ends the run (a failure, a retry, a held or requeued job).
   */
  failed(failure: CallFailure): Promise<'again' | InferenceResult>;
  /** Give back what the admission took (an endpoint's slot), whatever the answer. */
  release(succeeded: boolean): Promise<void>;
}

/** An admitted request: where it goes, with what, after how long a wait for its permit or slot. */
export interface RouteRequest {
  route: RouteName;
  call: CallRoute;
  /** Who answers, for the span and the event: the provider (undefined: the router chooses), or the endpoint's name. */
  provider: string | undefined;
  /** Time the request waited for its permit (pacing and 429 pauses), ms. */
  waitedMs: number;
  /** An endpoint's URL (the client's `endpointUrl`). */
  endpointUrl?: string;
  /** Extra request headers (an endpoint's `X-Scale-Up-Timeout`). */
  headers?: Record<string, string>;
  /** Called with `performance.now()` as the request leaves. */
  onSend?: (atMs: number) => void;
}

/**
 * One upstream call on a route: one tracing span (`upstream-span.ts`) and one `upstream` event
 * per answer. A failure is thrown as the `CallFailure` that classifies it.
 */
export async function callRoute(
  ctx: AccountContext,
  job: Job,
  request: RouteRequest,
  signal: AbortSignal,
): Promise<CallOutcome> {
  const span = {
    account: ctx.account.id,
    route: request.route,
    provider: request.provider,
    throttleWaitMs: request.waitedMs,
  };
  const endpoint = request.route === 'endpoint';
  try {
    const outcome = await tracedUpstreamCall(span, job.task, async () => {
      const answer = await callInference(job, request.call, {
        upstream: ctx.upstream,
        signal,
        timeoutMs: ctx.timeoutMs,
        maxBodyBytes: ctx.maxBodyBytes,
        maxBinaryBytes: ctx.maxBinaryBytes,
        ...(request.onSend ? { onSend: request.onSend } : {}),
        ...(request.endpointUrl ? { endpointUrl: request.endpointUrl } : {}),
        ...(request.headers ? { headers: request.headers } : {}),
      });
      // An endpoint answers for itself: it is named, not a provider the router chose.
      return endpoint ? { ...answer, provider: request.provider ?? answer.provider } : answer;
    });
    ctx.events.emit('upstream', {
      account: ctx.account.id,
      route: request.route,
      provider: outcome.provider,
      status: 200,
      latencyMs: outcome.latencyMs,
    });
    return outcome;
  } catch (err) {
    if (err instanceof CallFailure) {
      const { info } = err.error;
      ctx.events.emit('upstream', {
        account: ctx.account.id,
        route: request.route,
        provider: (endpoint ? request.provider : info.provider) ?? request.provider ?? 'auto',
        status: info.status ?? 0,
        latencyMs: 0,
      });
    }
    throw err;
  }
}

/** The result of a job's paid success, on whichever route answered. */
export function routeResult(
  bullJob: BullJob,
  answered: {
    route: RouteName;
    provider: string;
    outcome: CallOutcome;
    throttledMs: number;
    costUsd: number;
  },
): InferenceResult {
  return {
    output: answered.outcome.output,
    provider: answered.provider,
    route: answered.route,
    attempts: bullJob.attemptsMade + 1,
    throttledMs: answered.throttledMs,
    latencyMs: answered.outcome.latencyMs,
    costUsd: answered.costUsd,
  };
}
