/**
 * HTTP for simulated Inference Endpoints:
 *
 *   POST /endpoints/{name}                        the serving container (task payloads, as `endpointUrl`)
 *   POST /endpoints/{name}/v1/chat/completions    chat (TGI's OpenAI route)
 *   POST /endpoints/{name}/v1/completions         text generation
 *   GET  /endpoints-api/v2/endpoint/{ns}/{name}   management: state
 *   POST /endpoints-api/v2/endpoint/{ns}/{name}/{resume|pause|scale-to-zero}
 *   GET  /_sim/endpoints                          stats of every endpoint
 *   POST /_sim/endpoints                          {"name": "...", "config": {...}}: set one
 *   POST /_sim/endpoints/reset-stats
 *
 * An inference request: auth (401) → state (paused 400 "Bad Request: Invalid state"; failed 502;
 * no replica: 503 and a scale-up, or with `X-Scale-Up-Timeout` held until ready) → a free slot
 * (else 429, as TGI and TEI answer past their concurrent-request limit) → latency → answer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServedModel } from '../catalog.js';
import { errorReply, isRecord, jsonReply, parseJson, readBody, sendReply } from '../http/reply.js';
import { hfInferenceOperation, OPERATIONS, type OperationName } from '../operations.js';
import type { SimState } from '../state.js';
import { type EndpointConfig, parseEndpointConfig } from './endpoint-config.js';
import { type EndpointStats, SimEndpoint } from './sim-endpoint.js';

const MAX_BODY_BYTES = 64 * 1024 * 1024;
/** The longest hold `X-Scale-Up-Timeout` may ask for here. */
const MAX_SCALE_UP_TIMEOUT_S = 600;

export const INVALID_STATE = 'Bad Request: Invalid state';
export const OVERLOADED = 'Model is overloaded';

export class SimEndpoints {
  private readonly endpoints = new Map<string, SimEndpoint>();

  constructor(private readonly state: SimState) {}

  /** Set (or replace) an endpoint; it starts over in its initial state with fresh counters. */
  set(name: string, config: EndpointConfig): void {
    this.endpoints.set(name, new SimEndpoint(name, config, this.state.now, (ms) => this.state.sleep(ms)));
  }

  get(name: string): SimEndpoint | undefined {
    return this.endpoints.get(name);
  }

  stats(): Record<string, EndpointStats> {
    return Object.fromEntries([...this.endpoints].map(([name, endpoint]) => [name, endpoint.stats()]));
  }

  resetStats(): void {
    for (const endpoint of this.endpoints.values()) endpoint.resetStats();
  }
}

function bearer(req: IncomingMessage): string | null {
  const value = req.headers.authorization;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(typeof value === 'string' ? value : '');
  return match?.[1] ?? null;
}

function authorized(req: IncomingMessage, config: EndpointConfig): boolean {
  const token = bearer(req);
  if (token === null) return false;
  return config.token === null ? token.startsWith('hf_') : token === config.token;
}

function send(
  res: ServerResponse,
  endpoint: SimEndpoint | null,
  status: number,
  reply: ReturnType<typeof jsonReply>,
): void {
  if (sendReply(res, reply)) endpoint?.countStatus(status);
  else endpoint?.countStatus(0);
}

/** `/endpoints/...` (rest after the prefix). */
export async function handleEndpointInference(
  state: SimState,
  endpoints: SimEndpoints,
  req: IncomingMessage,
  res: ServerResponse,
  rest: string,
): Promise<void> {
  const slash = rest.indexOf('/');
  const name = slash < 0 ? rest : rest.slice(0, slash);
  const route = slash < 0 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
  const endpoint = endpoints.get(name);
  if (!endpoint) {
    sendReply(res, errorReply(404, 'Not Found'));
    return;
  }
  if (req.method !== 'POST') {
    send(res, endpoint, 405, errorReply(405, 'Method Not Allowed'));
    return;
  }
  if (!authorized(req, endpoint.config)) {
    send(res, endpoint, 401, errorReply(401, 'Unauthorized'));
    return;
  }
  let raw: Buffer;
  try {
    raw = await readBody(req, MAX_BODY_BYTES);
  } catch {
    send(res, endpoint, 413, errorReply(413, 'Request body too large'));
    return;
  }
  const body = parseJson(raw);
  if (!isRecord(body)) {
    send(res, endpoint, 400, errorReply(400, 'Request body must be a JSON object'));
    return;
  }

  const current = endpoint.refresh();
  if (current === 'paused') {
    send(res, endpoint, 400, errorReply(400, INVALID_STATE));
    return;
  }
  if (current === 'failed' || current === 'updateFailed') {
    send(res, endpoint, 502, errorReply(502, 'Bad Gateway'));
    return;
  }
  if (current !== 'running') {
    const endWaking = endpoint.beginWaking();
    try {
      const header = req.headers['x-scale-up-timeout'];
      const seconds = Number(typeof header === 'string' ? header : Number.NaN);
      if (Number.isFinite(seconds) && seconds > 0) {
        const ready = await endpoint.untilReady(Math.min(seconds, MAX_SCALE_UP_TIMEOUT_S) * 1000);
        if (!ready) {
          send(res, endpoint, 503, errorReply(503, 'Service Unavailable'));
          return;
        }
      } else {
        void endpoint.scaleUp('request');
        send(res, endpoint, 503, errorReply(503, 'Service Unavailable'));
        return;
      }
    } finally {
      endWaking();
    }
  }

  const operationName = operationFor(endpoint.config, route, body);
  const operation = operationName ? OPERATIONS[operationName] : null;
  const invalid = operation ? operation.invalid(body) : `no route /${route} for task ${endpoint.config.task}`;
  if (!operation || invalid) {
    send(res, endpoint, 400, errorReply(400, invalid ?? 'Invalid request'));
    return;
  }
  const others = endpoint.busy;
  const release = endpoint.takeSlot();
  if (!release) {
    send(res, endpoint, 429, jsonReply(429, { error: OVERLOADED, error_type: 'overloaded' }));
    return;
  }
  res.once('close', release);
  try {
    const served: ServedModel = {
      modelId: endpoint.config.model,
      model: state.config.models[endpoint.config.model] ?? { providers: {} },
      provider: 'hf-inference',
      mapping: { task: endpoint.config.task },
      providerModelId: endpoint.config.model,
    };
    const answer = operation.respond(body, { served, imageBaseUrl: `${state.url}/_sim/images` });
    if (!(await state.sleep(endpoint.latencyMs(others, state.latencyRandom)))) return;
    send(res, endpoint, answer.status, answer);
  } finally {
    release();
  }
}

function operationFor(
  config: EndpointConfig,
  route: string,
  body: Record<string, unknown>,
): OperationName | null {
  if (route === 'v1/chat/completions') return config.task === 'chat-completion' ? 'chat' : null;
  if (route === 'v1/completions')
    return config.task === 'chat-completion' || config.task === 'text-generation' ? 'completions' : null;
  if (route !== '') return null;
  return hfInferenceOperation(config.task, body);
}

/** `/endpoints-api/...` (rest after the prefix): the management API. */
export function handleEndpointManagement(
  endpoints: SimEndpoints,
  req: IncomingMessage,
  res: ServerResponse,
  rest: string,
  baseUrl: string,
): void {
  const match = /^v2\/endpoint\/([^/]+)\/([^/]+)(?:\/(resume|pause|scale-to-zero))?\/?$/.exec(rest);
  if (!match) {
    sendReply(res, errorReply(404, 'Not Found'));
    return;
  }
  const [, namespace, name, action] = match;
  const endpoint = name ? endpoints.get(name) : undefined;
  const token = bearer(req);
  if (token === null || (endpoint && !authorized(req, endpoint.config))) {
    sendReply(res, errorReply(401, 'Unauthorized'));
    return;
  }
  if (!endpoint || endpoint.config.namespace !== namespace) {
    sendReply(res, errorReply(404, `Endpoint ${namespace}/${name} not found`));
    return;
  }
  const method = action ? 'POST' : 'GET';
  if (req.method !== method) {
    sendReply(res, errorReply(405, 'Method Not Allowed'));
    return;
  }
  endpoint.countManagement(action ?? 'get');
  endpoint.refresh();
  if (action === 'resume') void endpoint.scaleUp('management');
  else if (action === 'pause') endpoint.pause();
  else if (action === 'scale-to-zero') endpoint.scaleToZero();
  const { config } = endpoint;
  const ready = endpoint.state === 'running' ? config.replicas : 0;
  sendReply(
    res,
    jsonReply(200, {
      name: endpoint.name,
      type: 'protected',
      model: { repository: config.model, task: config.task },
      compute: { scaling: { minReplica: 0, maxReplica: config.replicas } },
      status: {
        state: endpoint.state,
        readyReplica: ready,
        targetReplica:
          endpoint.state === 'running' || endpoint.state === 'initializing' ? config.replicas : 0,
        url: `${baseUrl}/endpoints/${endpoint.name}`,
        message: `Endpoint is ${endpoint.state}`,
      },
    }),
  );
}

/** `/_sim/endpoints[...]`: configure and read endpoints of a simulator running as a process. */
export async function handleEndpointControl(
  endpoints: SimEndpoints,
  req: IncomingMessage,
  res: ServerResponse,
  rest: string,
): Promise<void> {
  const route = `${req.method} ${rest}`;
  if (route === 'GET ') {
    sendReply(res, jsonReply(200, endpoints.stats()));
    return;
  }
  if (route === 'POST reset-stats') {
    endpoints.resetStats();
    sendReply(res, jsonReply(200, { ok: true }));
    return;
  }
  if (route === 'POST ') {
    const body = parseJson(await readBody(req, MAX_BODY_BYTES));
    try {
      if (!isRecord(body)) throw new Error('expected {"name": "...", "config": {...}}');
      endpoints.set(String(body.name), parseEndpointConfig(body.name, body.config ?? {}));
    } catch (error) {
      sendReply(res, errorReply(400, error instanceof Error ? error.message : String(error)));
      return;
    }
    sendReply(res, jsonReply(200, { ok: true }));
    return;
  }
  sendReply(res, errorReply(404, 'Not Found'));
}
