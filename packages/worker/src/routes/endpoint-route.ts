import type { HfqError } from '@hfq/shared';
import { scrubSecrets } from '@hfq/shared/internal';
import { DelayedError, RateLimitError } from 'bullmq';
import type { AccountContext } from '../account-context.js';
import type { AccountEndpoint, HeldSlot } from '../endpoints/endpoint-slots.js';
import type { CallFailure } from '../inference-call.js';
import { type Admission, endRun, type JobRun } from './route.js';
import { acquireRouterPermit, routerTarget } from './router-route.js';
import { routingRule } from './routing-policy.js';
import type { Target } from './target.js';

/**
 * Jobs whose model one of the account's Inference Endpoints serves (see docs/architecture.md,
 * "Dedicated capacity"). The endpoint's limit is requests in flight, held in a shared semaphore;
 * the routing policy (`routing-policy.ts`) says which of endpoint and router comes first:
 *
 * - `endpoint-first`: a free slot, else a router permit due within a moment, else wait for a slot;
 * - `router-first`: a router permit due within a moment, else a free slot, else wait; once the
 *   router is closed (credits, budget, a hold), the endpoint alone;
 * - `endpoint-only`: a slot, waiting as long as it takes.
 *
 * Waiting for a slot, a cold start or a resume happens inside the run and uses no attempt. A
 * paused or failed endpoint is routed around (the router path as for any job) or, under
 * `endpoint-only`, holds its jobs, with the reason in the log and the status.
 *
 * `EndpointWay` is one job's side of it: each step of the job's route ladder (`process-job.ts`)
 * asks it for an admission (a slot, or a router permit by the policy), and a slot's `Admission`
 * reacts to the endpoint's answers by their class (`onFailure`).
 */

export type EndpointDecision =
  /** No endpoint serves the job, or it is unavailable and the policy allows the router. */
  | { kind: 'skip' }
  /** A router permit was taken while the endpoint was busy. */
  | { kind: 'router'; target: Extract<Target, { kind: 'go' }> }
  /** A slot of the endpoint, and the request it admits. */
  | { kind: 'endpoint'; admission: Admission };

/** A router permit due within this long is worth taking instead of waiting for an endpoint slot. */
const ROUTER_SPILL_WAIT_MS = 250;
/** A job held by an unavailable endpoint (under `endpoint-only`) looks again after this long. */
const HOLD_RECHECK_MS = 5_000;
/** A paused or failed mark lapses after this long, and one request tries the endpoint again. */
const UNAVAILABLE_RECHECK_MS = 10_000;

type SlotTry =
  | { kind: 'slot'; admission: Admission }
  | { kind: 'busy' }
  | { kind: 'unavailable'; reason: string };

/**
 * The endpoint's side of one job's run, when one of the account's endpoints serves it: each
 * `admit` is one step of the job's route ladder (`process-job.ts`), and remembers across steps
 * what the endpoint's last answer said (unavailable: route around it or hold, by policy).
 */
export class EndpointWay {
  private readonly rule: ReturnType<typeof routingRule>;
  /** The endpoint's last answer marked it paused or failed: the next step acts on it. */
  private unavailableReason: string | undefined;
  /**
   * The endpoint's last answer said busy (a 429, a cold start): the next step does not try its
   * slot again at once, but takes the router by the policy or waits its turn, as a job that found
   * no free slot.
   */
  private afterBusy = false;

  private constructor(
    private readonly ctx: AccountContext,
    private readonly run: JobRun,
    private readonly endpoint: AccountEndpoint,
  ) {
    this.rule = routingRule(ctx.account.routing);
  }

  /** The way for a job one of the account's endpoints serves; undefined for any other job. */
  static for(ctx: AccountContext, run: JobRun): EndpointWay | undefined {
    const endpoint = ctx.endpoints.find((e) => e.serves(run.data.job));
    return endpoint ? new EndpointWay(ctx, run, endpoint) : undefined;
  }

  /**
   * A slot of the endpoint, or a router permit by the routing policy, or `skip` (take the
   * router's ladder). Waiting for a slot, a cold start or a resume happens here, in the run, and
   * uses no attempt; the wait counts in the job's `throttledMs`.
   */
  async admit(): Promise<EndpointDecision> {
    const { ctx, run, endpoint, rule } = this;
    const { job } = run.data;
    const marked = this.unavailableReason;
    this.unavailableReason = undefined;
    if (marked !== undefined) return this.unavailable(marked);
    let routerOpen = rule.router;
    let slotTried = this.afterBusy;
    this.afterBusy = false;
    const waitStarted = performance.now();
    const waited = (): number => Math.round(performance.now() - waitStarted);
    let handed: HeldSlot | undefined;
    for (;;) {
      if (handed || ((rule.endpointFirst || !routerOpen) && !slotTried)) {
        const slot = await this.trySlot(handed, waited());
        handed = undefined;
        if (slot.kind === 'slot') return { kind: 'endpoint', admission: slot.admission };
        if (slot.kind === 'unavailable') return this.unavailable(slot.reason);
      }
      if (routerOpen) {
        // The wait for the endpoint so far; the permit's own wait is its `waitedMs`.
        const waitedForEndpoint = waited();
        const permit = await acquireRouterPermit(ctx, job, run.tokens, run.signal, {
          maxWaitMs: ROUTER_SPILL_WAIT_MS,
        });
        if (permit.kind === 'admitted') {
          run.state.throttledMs += waitedForEndpoint;
          return { kind: 'router', target: routerTarget(ctx, job, permit) };
        }
        if (permit.kind !== 'wait') routerOpen = false;
      }
      if (!rule.endpointFirst && routerOpen && !slotTried) {
        const slot = await this.trySlot(undefined, waited());
        if (slot.kind === 'slot') return { kind: 'endpoint', admission: slot.admission };
        if (slot.kind === 'unavailable') {
          await endpoint.noteDemand(ctx.now());
          return { kind: 'skip' };
        }
      }
      handed = await endpoint.waitForTurn(run.signal);
      slotTried = false;
    }
  }

  private async unavailable(reason: string): Promise<EndpointDecision> {
    const { ctx, endpoint, rule, run } = this;
    // The job is work for the endpoint even when it goes elsewhere: its lifecycle may resume it.
    await endpoint.noteDemand(ctx.now());
    if (rule.unavailable === 'route-around') return { kind: 'skip' };
    if (ctx.lane === `endpoint.${endpoint.name}`) {
      // Its own lane (see docs/architecture.md, "Holds"): the lane is held, not each job delayed,
      // so waiting costs nothing per job; the supervisor resumes it once the mark lapses.
      await ctx.hold(`endpoint ${endpoint.name} unavailable (routing ${rule.policy}): ${reason}`);
      throw new RateLimitError();
    }
    // A job the producer put in another lane (added before the endpoint was published): it alone waits.
    ctx.logger.warn(
      {
        account: ctx.account.id,
        endpoint: endpoint.name,
        jobId: run.bullJob.id,
        reason,
        delayMs: HOLD_RECHECK_MS,
      },
      `job held: its endpoint is unavailable (routing ${rule.policy})`,
    );
    await run.bullJob.moveToDelayed(ctx.now() + HOLD_RECHECK_MS, run.token);
    throw new DelayedError();
  }

  /** A slot (handed over by a finished request, or free now) and its admission, or why not. */
  private async trySlot(handed: HeldSlot | undefined, waitedMs: number): Promise<SlotTry> {
    const { endpoint } = this;
    let slot = handed;
    if (!slot) {
      const admitted = await endpoint.tryAcquire();
      if (admitted.kind === 'unavailable')
        return { kind: 'unavailable', reason: `${admitted.state}: ${admitted.reason}` };
      if (admitted.kind !== 'admitted') return { kind: 'busy' };
      slot = { ...admitted, admittedLocalAt: performance.now() };
      // A slot was free: the next waiter of this process may find another.
      endpoint.wake();
    }
    this.run.state.throttledMs += waitedMs;
    return { kind: 'slot', admission: this.admission(slot) };
  }

  /** The request a slot admits, and how the endpoint's answers are met. */
  private admission(slot: HeldSlot): Admission {
    const { ctx, endpoint, run } = this;
    const release = endpoint.hold(slot);
    const log = { account: ctx.account.id, endpoint: endpoint.name };
    const holdS = slot.waker ? endpoint.scaleUpTimeoutS() : 0;
    const admittedAt = performance.now();
    return {
      request: {
        route: 'endpoint',
        // The account's token, sent to the endpoint's own URL (never with a provider or `billTo`).
        call: { route: 'endpoint', credential: ctx.account.hfToken, provider: undefined, billTo: undefined },
        provider: endpoint.name,
        waitedMs: run.state.throttledMs,
        endpointUrl: endpoint.config.url,
        ...(holdS > 0 ? { headers: { 'X-Scale-Up-Timeout': String(holdS) } } : {}),
      },
      answered: async () => {
        await endpoint.noteAnswered(slot.waker, ctx.now());
        if (slot.waker) {
          ctx.logger.info(log, 'endpoint answered: every worker may use it');
          ctx.events.emit('endpoint', { ...log, event: 'ready' });
        }
        // Billed by the replica-hour, not per request: the cost shows in the endpoint's status.
        return { provider: `endpoint:${endpoint.name}`, costUsd: 0 };
      },
      failed: async (failure) => {
        const next = await onFailure(ctx, endpoint, failure, slot, holdS, run.signal);
        if (next.kind === 'unavailable') {
          this.unavailableReason = next.reason;
        } else {
          // A cold or busy endpoint's answer was part of the job's wait for it.
          run.state.throttledMs += Math.round(performance.now() - admittedAt);
          this.afterBusy = true;
        }
        return 'again';
      },
      release,
    };
  }
}

type EndpointAnswer = { kind: 'busy' } | { kind: 'unavailable'; reason: string };

/** Mark the endpoint paused or failed for a while (every worker routes around it), say so, and tell the caller. */
async function markUnavailable(
  ctx: AccountContext,
  endpoint: AccountEndpoint,
  state: 'paused' | 'failed',
  reason: string,
  log: () => void,
): Promise<EndpointAnswer> {
  await endpoint.noteUnavailable(state, reason, UNAVAILABLE_RECHECK_MS);
  log();
  ctx.events.emit('endpoint', { account: ctx.account.id, endpoint: endpoint.name, event: state, reason });
  return { kind: 'unavailable', reason };
}

/** React to the endpoint's answer by its class: `errors.ts` says what each answer means. */
async function onFailure(
  ctx: AccountContext,
  endpoint: AccountEndpoint,
  failure: CallFailure,
  slot: { waker: boolean; admittedAt: number },
  holdS: number,
  signal: AbortSignal,
): Promise<EndpointAnswer> {
  const { error } = failure;
  const status = error.info.status ?? 0;
  const log = { account: ctx.account.id, endpoint: endpoint.name, status };
  // A waking request that timed out got no answer to classify, but means what a 503 does.
  const code = wakingRequestTimedOut(error, slot.waker, signal) ? 'HFQ_ENDPOINT_COLD' : error.code;
  switch (code) {
    case 'HFQ_ENDPOINT_COLD': {
      if (await endpoint.noteCold('503 while scaling up', ctx.now())) {
        ctx.logger.warn(
          { ...log, reason: 'scaling up' },
          'endpoint cold: its jobs wait, one request wakes it',
        );
        ctx.events.emit('endpoint', { account: ctx.account.id, endpoint: endpoint.name, event: 'cold' });
      }
      // After a held request the next waker may go at once; plain wake-ups stay one per interval.
      if (slot.waker) await endpoint.afterColdAnswer(holdS > 0);
      return { kind: 'busy' };
    }
    case 'HFQ_ENDPOINT_PAUSED': {
      const reason = 'paused (400 "Invalid state")';
      return markUnavailable(ctx, endpoint, 'paused', reason, () =>
        ctx.logger.warn(
          { ...log, reason },
          'endpoint paused: its jobs go around it or wait, by routing policy',
        ),
      );
    }
    case 'HFQ_ENDPOINT_REFUSED': {
      const reason = scrubSecrets(`refused (${status}): ${error.message}`, ctx.routes.secrets()).slice(
        0,
        300,
      );
      return markUnavailable(ctx, endpoint, 'failed', reason, () =>
        ctx.logger.error({ ...log, reason }, 'endpoint refused the account: its jobs go around it or wait'),
      );
    }
  }
  // Any other HTTP answer means a replica is up (a timeout or a cut connection says nothing).
  if (status > 0) await endpoint.noteAnswered(slot.waker, ctx.now());
  if (code === 'HFQ_THROTTLED') {
    // The serving container's concurrent-request limit: fewer slots, once per episode; the job
    // waits for a slot like any other (no attempt used).
    const cut = await endpoint.semaphore.recordThrottle(endpoint.ref, slot.admittedAt);
    if (cut.newEpisode) {
      ctx.logger.warn(
        { ...log, limit: cut.limit, episodes: cut.episodes },
        'endpoint 429: concurrency lowered',
      );
      ctx.events.emit('endpoint', {
        account: ctx.account.id,
        endpoint: endpoint.name,
        event: 'throttled',
        limit: cut.limit,
      });
    }
    return { kind: 'busy' };
  }
  return endRun(
    ctx,
    error.retryClass === 'fail' ? 'fail' : 'retry',
    `endpoint ${endpoint.name}: ${error.message}`,
  );
}

/**
 * A held waking request that outlived the call's timeout, with no answer (not one the job's own
 * signal cut): the endpoint is still starting. This worker's own fact, not an upstream answer.
 */
function wakingRequestTimedOut(error: HfqError, waker: boolean, signal: AbortSignal): boolean {
  return waker && !error.info.status && !signal.aborted && /timed out/.test(error.message);
}
