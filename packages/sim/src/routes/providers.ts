/**
 * `/providers/{together|cerebras}`: the providers' own APIs, reached by the client in direct
 * mode (a key that does not start with `hf_`). A provider knows nothing of Hugging Face: an
 * `hf_` token is an unknown key to it, and `X-HF-Bill-To` is ignored (both are recorded, as leaks).
 */
import { identify, isAccepted } from '../auth.js';
import { DIRECT_PROVIDERS } from '../config.js';
import { errorReply, jsonReply } from '../http/reply.js';
import type { SimState } from '../state.js';
import { PROVIDER_UNAUTHORIZED } from '../texts.js';
import { handleBatchApi, isBatchApiRoute } from './batch-api.js';
import { readJsonObject } from './body.js';
import { type Exchange, header, send } from './exchange.js';
import { serveInference } from './inference.js';
import { hasProviderRoute, resolveProviderRoute } from './resolve.js';

export async function handleProvider(state: SimState, exchange: Exchange, rest: string): Promise<void> {
  const { record } = exchange;
  const slash = rest.indexOf('/');
  const provider = DIRECT_PROVIDERS.find((name) => name === rest.slice(0, slash)) ?? null;
  const route = rest.slice(slash + 1);
  if (provider && isBatchApiRoute(route)) {
    exchange.record.provider = provider;
    await handleBatchApi(state, exchange, provider, route);
    return;
  }
  if (!provider || !hasProviderRoute(provider, route)) {
    send(exchange, errorReply(404, 'Not Found'));
    return;
  }
  record.provider = provider;
  if (exchange.req.method !== 'POST') {
    send(exchange, errorReply(405, 'Method Not Allowed'));
    return;
  }

  const caller = identify(header(exchange, 'authorization') ?? undefined, state.config);
  record.tokenLabel = caller.label;
  record.authorizationKind = caller.kind;
  const allowedHere = !caller.policy.providers || caller.policy.providers.includes(provider);
  if (caller.kind !== 'provider-key' || !isAccepted(caller, state.config) || !allowedHere) {
    send(exchange, jsonReply(401, PROVIDER_UNAUTHORIZED[provider]));
    return;
  }
  const body = await readJsonObject(exchange);
  if (!body) return;

  const resolved = resolveProviderRoute(state.config, provider, route, body);
  if (resolved.ok) record.model = resolved.value.served.modelId;
  await serveInference(state, exchange, { target: provider, caller, resolved, body, billTo: null });
}
