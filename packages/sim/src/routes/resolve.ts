/**
 * From a path and a body to "which model, served by which provider, computing what". Shared by
 * the router and the direct provider APIs, which expose the same provider routes.
 */
import { findByModelId, findByProviderModelId, firstProviderFor, type ServedModel } from '../catalog.js';
import { PROVIDERS, type ProviderName, type SimConfig } from '../config.js';
import { errorReply, jsonReply, type Reply } from '../http/reply.js';
import { hfInferenceOperation, OPERATIONS, type OperationName } from '../operations.js';
import { modelNotSupported, noProviderForModel } from '../texts.js';

export interface Resolution {
  served: ServedModel;
  operation: OperationName;
}

/** A resolution, or the 400 that explains why there is none. */
export type Resolved =
  | { ok: true; value: Resolution }
  | { ok: false; reply: Reply; provider: ProviderName | null };

const PROVIDER_ROUTES: Partial<Record<ProviderName, Record<string, OperationName>>> = {
  together: {
    'v1/chat/completions': 'chat',
    'v1/embeddings': 'embeddings',
    'v1/completions': 'completions',
    'v1/images/generations': 'images',
  },
  cerebras: { 'v1/chat/completions': 'chat' },
};

const fail = (reply: Reply, provider: ProviderName | null): Resolved => ({ ok: false, reply, provider });

function accept(
  served: ServedModel | null,
  operation: OperationName | null,
  provider: ProviderName,
): Resolved {
  if (!served || !operation || !OPERATIONS[operation].tasks.includes(served.mapping.task)) {
    return fail(errorReply(400, modelNotSupported(provider)), provider);
  }
  return { ok: true, value: { served, operation } };
}

/** Does `provider` have a route at `rest`? (Unknown routes are 404s, not 400s.) */
export function hasProviderRoute(provider: ProviderName, rest: string): boolean {
  if (provider === 'hf-inference') return /^models\/.+/.test(rest);
  return PROVIDER_ROUTES[provider]?.[rest] !== undefined;
}

export function resolveProviderRoute(
  config: SimConfig,
  provider: ProviderName,
  rest: string,
  body: Record<string, unknown>,
): Resolved {
  if (provider === 'hf-inference') return resolveHfInference(config, rest, body);
  const operation = PROVIDER_ROUTES[provider]?.[rest] ?? null;
  if (typeof body.model !== 'string') return fail(errorReply(400, '`model` is required'), provider);
  return accept(findByProviderModelId(config.models, provider, body.model), operation, provider);
}

// hf-inference puts the model in the path: models/{id}[/pipeline/{task} | /v1/chat/completions | /v1/completions]
function resolveHfInference(config: SimConfig, rest: string, body: Record<string, unknown>): Resolved {
  const path = rest.slice('models/'.length);
  const pipeline = /^(.+)\/pipeline\/([^/]+)$/.exec(path);
  if (pipeline) {
    const [, modelId = '', task = ''] = pipeline;
    const operation = task === 'feature-extraction' || task === 'sentence-similarity' ? task : null;
    return accept(findByModelId(config.models, 'hf-inference', modelId), operation, 'hf-inference');
  }
  for (const [suffix, operation] of [
    ['/v1/chat/completions', 'chat'],
    ['/v1/completions', 'completions'],
  ] as const) {
    if (path.endsWith(suffix)) {
      return accept(
        findByModelId(config.models, 'hf-inference', path.slice(0, -suffix.length)),
        operation,
        'hf-inference',
      );
    }
  }
  const served = findByModelId(config.models, 'hf-inference', path);
  return accept(served, served ? hfInferenceOperation(served.mapping.task, body) : null, 'hf-inference');
}

/**
 * The auto-router (`/v1/chat/completions`): `model` may carry a `:provider` suffix naming the
 * provider, or a policy suffix (`:fastest`, `:cheapest`), which picks like no suffix.
 */
export function resolveAuto(config: SimConfig, body: Record<string, unknown>): Resolved {
  const model = typeof body.model === 'string' ? body.model : '';
  const colon = model.lastIndexOf(':');
  const suffix = colon > 0 ? model.slice(colon + 1) : '';
  const named = PROVIDERS.find((provider) => provider === suffix) ?? null;
  const modelId = colon > 0 ? model.slice(0, colon) : model;
  const served = named
    ? findByModelId(config.models, named, modelId)
    : firstProviderFor(config.models, modelId, 'conversational');
  if (!served || !OPERATIONS.chat.tasks.includes(served.mapping.task)) {
    const error = {
      message: noProviderForModel(model),
      type: 'invalid_request_error',
      param: 'model',
      code: 'model_not_supported',
    };
    return fail(jsonReply(400, { error }), named);
  }
  return { ok: true, value: { served, operation: 'chat' } };
}
