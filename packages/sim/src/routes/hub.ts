/**
 * `/hub`: the part of the Hugging Face Hub API the client uses,
 * `GET /api/models/{id}?expand[]=inferenceProviderMapping`, and `GET /api/whoami-v2` (who a token
 * belongs to: hfq's worker checks its token once at start). Anonymous model calls are allowed (the
 * client sends no token in direct mode). The Hub has its own fixed-window limit per caller and
 * reports it with IETF draft headers under the policy name "api".
 */
import { identify, isAccepted } from '../auth.js';
import type { ModelConfig, ProviderName } from '../config.js';
import { fnv1a32, hex8 } from '../hash.js';
import { errorReply, jsonReply } from '../http/reply.js';
import { admitAll } from '../limiters/limiter-registry.js';
import type { SimState } from '../state.js';
import { HUB_RATE_LIMITED, INVALID_CREDENTIALS, REPOSITORY_NOT_FOUND } from '../texts.js';
import { bindingOutcome, ietfHeaders, retryAfterHeader, waitMs } from '../throttle.js';
import { type Exchange, header, send } from './exchange.js';

const MODEL_ROUTE = /^api\/models\/(.+)$/;
const WHOAMI_ROUTE = /^api\/whoami-v2\/?$/;
/** Marks every answer of the simulator's Hub, so a worker can say which upstream it talks to. */
const SIMULATOR_HEADER = { 'x-hf-simulator': 'hfq-sim' };

export function handleHub(state: SimState, exchange: Exchange, rest: string): void {
  const { record } = exchange;
  if (WHOAMI_ROUTE.test(rest)) {
    whoami(state, exchange);
    return;
  }
  const match = MODEL_ROUTE.exec(rest);
  if (!match) {
    send(exchange, errorReply(404, 'Not Found'));
    return;
  }
  if (exchange.req.method !== 'GET') {
    send(exchange, errorReply(405, 'Method Not Allowed'));
    return;
  }
  const caller = identify(header(exchange, 'authorization') ?? undefined, state.config);
  record.tokenLabel = caller.label;
  record.authorizationKind = caller.kind;
  const refusedToken =
    caller.token !== null &&
    (caller.kind !== 'hf' ||
      caller.policy.revoked ||
      (!caller.known && state.config.unknownTokens === 'reject'));
  if (refusedToken) {
    send(exchange, errorReply(401, INVALID_CREDENTIALS));
    return;
  }

  const limits = (caller.policy.hubLimits ?? state.config.hub.limits).map((limit) => ({
    config: limit,
    limiter: state.limiters.get(`hub:${caller.id}`, limit),
    cost: 1,
  }));
  const admission = admitAll(limits, state.now());
  const binding = bindingOutcome(admission.outcomes);
  const limitHeaders = binding ? ietfHeaders(binding, 'api') : {};
  if (!admission.allowed) {
    const wait = binding ? waitMs(binding) : 1000;
    const headers = { ...limitHeaders, ...retryAfterHeader(state.config.hub.retryAfter, wait) };
    send(exchange, errorReply(429, HUB_RATE_LIMITED, headers));
    return;
  }
  const successHeaders = state.config.hub.rateLimitHeadersOnSuccess ? limitHeaders : {};

  const modelId = decodeURIComponent(match[1] ?? '');
  const model = state.config.models[modelId];
  if (!model) {
    const headers = {
      ...successHeaders,
      'x-error-code': 'RepoNotFound',
      'x-error-message': REPOSITORY_NOT_FOUND,
    };
    send(exchange, errorReply(404, REPOSITORY_NOT_FOUND, headers));
    return;
  }
  record.model = modelId;
  const expand = exchange.url.searchParams.getAll('expand[]');
  send(
    exchange,
    jsonReply(200, modelInfo(modelId, model, expand, state.config.hub.mappingForm), successHeaders),
  );
}

/**
 * `GET /api/whoami-v2`: 200 with the token's user for an accepted Hugging Face token, 401 for none,
 * a provider key, a revoked token, or an unknown one while unknown tokens are rejected.
 */
function whoami(state: SimState, exchange: Exchange): void {
  if (exchange.req.method !== 'GET') {
    send(exchange, errorReply(405, 'Method Not Allowed', SIMULATOR_HEADER));
    return;
  }
  const caller = identify(header(exchange, 'authorization') ?? undefined, state.config);
  exchange.record.tokenLabel = caller.label;
  exchange.record.authorizationKind = caller.kind;
  if (!isAccepted(caller, state.config) || caller.kind !== 'hf') {
    send(exchange, errorReply(401, INVALID_CREDENTIALS, SIMULATOR_HEADER));
    return;
  }
  send(
    exchange,
    jsonReply(
      200,
      {
        type: 'user',
        id: caller.id,
        name: caller.label,
        fullname: caller.label,
        orgs: [],
        auth: { type: 'access_token', accessToken: { displayName: 'simulator', role: 'fineGrained' } },
      },
      SIMULATOR_HEADER,
    ),
  );
}

function modelInfo(modelId: string, model: ModelConfig, expand: string[], form: 'object' | 'array'): unknown {
  const _id = `${hex8(fnv1a32(modelId))}${hex8(fnv1a32(`${modelId}#1`))}${hex8(fnv1a32(`${modelId}#2`))}`;
  const entries = Object.entries(model.providers) as Array<
    [ProviderName, NonNullable<ModelConfig['providers'][ProviderName]>]
  >;
  if (expand.length === 0) {
    return {
      _id,
      id: modelId,
      modelId,
      private: false,
      pipeline_tag: entries[0]?.[1].task ?? null,
      tags: [],
    };
  }
  const info: Record<string, unknown> = { _id, id: modelId };
  if (expand.includes('inferenceProviderMapping')) {
    const mapping = entries.map(([provider, entry]) => ({
      provider,
      hfModelId: modelId,
      providerId: entry.providerId ?? modelId,
      status: entry.status ?? 'live',
      task: entry.task,
    }));
    info.inferenceProviderMapping =
      form === 'array'
        ? mapping
        : Object.fromEntries(
            mapping.map(({ provider, providerId, status, task }) => [provider, { status, providerId, task }]),
          );
  }
  return info;
}
