import type { InferenceResult, Job } from '@hfq/shared';
import type { Job as BullJob } from 'bullmq';
import type { AccountContext } from '../account-context.js';
import { CallFailure, type CallOutcome, type CallRoute, callInference } from '../inference-call.js';
import { tracedUpstreamCall } from '../upstream-span.js';

/**
 * A route is one way a job's request goes upstream (see docs/architecture.md, "The request's
 * life"): the HF router (`router-route.ts`), a provider key (`provider-key-route.ts`) or an
 * Inference Endpoint (`endpoint-route.ts`). Each takes its own admission (a router or key
 * permit, an endpoint slot) and gives it back its own way; the call, its tracing span, its
 * `upstream` event and the result built from its answer are the same for all, here. The
 * answer's class comes from `inference-call.ts`, which classifies through `errors.ts`.
 */
export type RouteName = 'hf-router' | 'provider-key' | 'endpoint';

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
