/**
 * The path of an inference request once its caller is authenticated, shared by the router and
 * the direct provider APIs:
 *
 *   script → model resolution (400) → input check (400) → bill-to (403) → rate limits (429)
 *   → input size (413/422) → credits (402) → busy provider (429) → latency → fault or success
 *
 * Rejections answer at once, without latency. Credits are reserved at admission and refunded
 * unless the request ends in a success.
 */

import { inferenceLimits } from '../admission.js';
import type { Caller } from '../auth.js';
import { billingAccount, creditsExhaustedReply } from '../billing.js';
import type { ThrottleTarget } from '../config.js';
import type { Reservation } from '../credits.js';
import { drawFault } from '../faults.js';
import { errorReply, jsonReply } from '../http/reply.js';
import { latencyMs } from '../latency.js';
import { admitAll } from '../limiters/limiter-registry.js';
import { OPERATIONS } from '../operations.js';
import type { SimState } from '../state.js';
import { batchTooLarge } from '../texts.js';
import { rateLimitHeaders, throttleBody, throttleReply } from '../throttle.js';
import { type Exchange, send } from './exchange.js';
import { answerFault } from './fault-answer.js';
import type { Resolved } from './resolve.js';
import { answerScript, passesThrough } from './scripted.js';

export interface InferenceRequest {
  target: ThrottleTarget;
  caller: Caller;
  resolved: Resolved;
  body: Record<string, unknown>;
  billTo: string | null;
}

export async function serveInference(
  state: SimState,
  exchange: Exchange,
  request: InferenceRequest,
): Promise<void> {
  const { caller, resolved, body, target } = request;
  const { config } = state;
  const served = resolved.ok ? resolved.value.served : null;
  const operation = resolved.ok ? OPERATIONS[resolved.value.operation] : null;
  const valid = operation !== null && operation.invalid(body) === null;
  const success =
    served && operation && valid
      ? operation.respond(body, { served, imageBaseUrl: `${state.url}/_sim/images` })
      : null;

  const step = state.scripts.next(caller.id);
  if (step) {
    exchange.record.scripted = true;
    if (!passesThrough(step)) {
      await answerScript(state, exchange, step, { target, caller, model: served?.modelId ?? '', success });
      return;
    }
  }
  if (!resolved.ok) {
    send(exchange, resolved.reply);
    return;
  }
  const invalid = operation?.invalid(body);
  if (!operation || !success || invalid) {
    send(exchange, errorReply(400, invalid ?? 'Invalid request'));
    return;
  }
  const items = operation.items(body);
  exchange.record.items = items;

  const billing = billingAccount(config, caller, target, request.billTo);
  if ('refused' in billing) {
    send(exchange, billing.refused);
    return;
  }

  const style = state.throttleStyleFor(target, caller);
  const limits = inferenceLimits(
    config,
    state.limiters,
    caller,
    resolved.value.served.provider,
    operation,
    body,
  );
  const admission = admitAll(limits, state.now());
  if (!admission.allowed) {
    send(exchange, throttleReply(style, admission.outcomes));
    return;
  }

  const maxItems = config.maxItemsPerRequest;
  if (maxItems !== null && items > maxItems) {
    send(
      exchange,
      jsonReply(config.tooLargeStatus, { error: batchTooLarge(items, maxItems), error_type: 'Validation' }),
    );
    return;
  }

  let reservation: Reservation | null = null;
  if (billing.credits) {
    // A provider key's batch lines spend the same credits: count what they finished by now.
    if (target !== 'router') state.batches.settle(caller.id);
    reservation = state.credits.reserve(billing.account, billing.label, billing.credits, items);
    if (!reservation) {
      send(exchange, creditsExhaustedReply(target, billing.credits));
      return;
    }
  }
  const refund = (): void => {
    if (reservation) state.credits.refund(reservation);
  };
  // A busy provider: a 429 that has nothing to do with the caller's rate (counted all the same).
  const busyShare = state.busyShareFor(caller);
  if (busyShare > 0 && state.faultRandom() < busyShare) {
    refund();
    send(exchange, jsonReply(429, throttleBody(style.body, 'requests', 1000)));
    return;
  }

  const fault = drawFault(state.faultsFor(caller), state.faultRandom);
  const delay = latencyMs(state.latencyFor(caller), items, state.latencyRandom);
  if (!(await state.sleep(delay))) {
    refund();
    return;
  }
  if (fault) {
    refund();
    await answerFault(state, exchange, fault, caller, resolved.value.served.modelId, success);
    return;
  }
  const headers = style.rateLimitHeadersOnSuccess
    ? rateLimitHeaders(style.rateLimitHeaders, admission.outcomes)
    : {};
  if (!send(exchange, { ...success, headers: { ...success.headers, ...headers } })) refund();
}
