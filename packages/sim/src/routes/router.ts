/**
 * `/router`: the Hugging Face router. `POST /v1/chat/completions` is the auto-router; every
 * other route is `/{provider}/...`. Only `hf_` tokens are accepted. Every answer names the
 * serving provider in `x-inference-provider` once one is known.
 */
import { identify, isAccepted } from '../auth.js';
import { PROVIDERS, type ProviderName } from '../config.js';
import { errorReply } from '../http/reply.js';
import type { SimState } from '../state.js';
import { INVALID_CREDENTIALS } from '../texts.js';
import { readJsonObject } from './body.js';
import { type Exchange, header, send } from './exchange.js';
import { serveInference } from './inference.js';
import { hasProviderRoute, type Resolved, resolveAuto, resolveProviderRoute } from './resolve.js';

const AUTO_ROUTE = 'v1/chat/completions';

export async function handleRouter(state: SimState, exchange: Exchange, rest: string): Promise<void> {
  const { record } = exchange;
  const slash = rest.indexOf('/');
  const first = slash < 0 ? rest : rest.slice(0, slash);
  const provider = PROVIDERS.find((name) => name === first) ?? null;
  const providerRest = slash < 0 ? '' : rest.slice(slash + 1);
  if (provider) setProvider(exchange, provider);

  if (rest !== AUTO_ROUTE && !(provider && hasProviderRoute(provider, providerRest))) {
    send(exchange, errorReply(404, 'Not Found'));
    return;
  }
  if (exchange.req.method !== 'POST') {
    send(exchange, errorReply(405, 'Method Not Allowed'));
    return;
  }

  const caller = identify(header(exchange, 'authorization') ?? undefined, state.config);
  record.tokenLabel = caller.label;
  record.authorizationKind = caller.kind;
  if (caller.kind !== 'hf' || !isAccepted(caller, state.config)) {
    send(exchange, errorReply(401, INVALID_CREDENTIALS));
    return;
  }
  const body = await readJsonObject(exchange);
  if (!body) return;

  const resolved: Resolved = provider
    ? resolveProviderRoute(state.config, provider, providerRest, body)
    : resolveAuto(state.config, body);
  const served = resolved.ok ? resolved.value.served : null;
  if (served) {
    setProvider(exchange, served.provider);
    record.model = served.modelId;
  } else if (!resolved.ok && resolved.provider) {
    setProvider(exchange, resolved.provider);
  }
  await serveInference(state, exchange, { target: 'router', caller, resolved, body, billTo: record.billTo });
}

function setProvider(exchange: Exchange, provider: ProviderName): void {
  exchange.record.provider = provider;
  exchange.headers['x-inference-provider'] = provider;
}
