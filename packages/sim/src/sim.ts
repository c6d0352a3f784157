/** `startSim`: the simulator as an object with a running server behind it. */

import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { BatchApiStats } from './batches/batch-store.js';
import type { ModelConfig, OrgConfig, SimConfigPatch, TokenConfig } from './config.js';
import { defaultConfig } from './config.js';
import { parseConfigPatch, parseScript } from './config-validate.js';
import { type EndpointConfigInput, parseEndpointConfig } from './endpoints/endpoint-config.js';
import { SimEndpoints } from './endpoints/endpoint-routes.js';
import type { EndpointStats } from './endpoints/sim-endpoint.js';
import { secretId } from './hash.js';
import type { RequestFilter, RequestRecord, SimStats, WindowCounts } from './recorder.js';
import { ANY_CALLER, type ScriptStep } from './scripts.js';
import { createSimServer } from './server.js';
import { SimState } from './state.js';

export interface SimOptions extends SimConfigPatch {
  /** Port to listen on; 0 picks a free one. @defaultValue `0` */
  port?: number;
  /** Interface to listen on. @defaultValue `'127.0.0.1'` */
  host?: string;
  /**
   * Clock for rate limits and the request log, in ms (any origin, never decreasing).
   * Inject one to test limits without sleeping; latency still uses real timers.
   * @defaultValue `performance.now`
   */
  now?: () => number;
  /** Inference Endpoints by name, served under `/endpoints/{name}` (see `setEndpoint`). */
  endpoints?: Record<string, EndpointConfigInput>;
}

export interface ProviderUrls {
  together: string;
  cerebras: string;
}

/** A running simulator. */
export interface Sim {
  /** `http://host:port` */
  readonly url: string;
  /** Replaces `https://huggingface.co`. */
  readonly hubUrl: string;
  /** Replaces `https://router.huggingface.co`. */
  readonly routerUrl: string;
  /** Replace `https://api.together.xyz` and `https://api.cerebras.ai`. */
  readonly providerUrls: ProviderUrls;
  /** Merge a partial config (validated; throws `SimConfigError`). Tokens and orgs it names start over. */
  configure(patch: SimConfigPatch): void;
  /** Set (or replace) a token or provider key; its credits, limiter windows start over. */
  setToken(token: string, config: TokenConfig): void;
  /** Set (or replace) an organisation; its pooled credits start over. */
  setOrg(name: string, config: OrgConfig): void;
  /** Add or replace a model in the catalog. */
  setModel(id: string, config: ModelConfig): void;
  /** Queue one-shot answers for the next requests of `token` (`'*'`: any caller). */
  script(token: string, steps: ScriptStep[]): void;
  stats(): SimStats;
  /** Most admitted (non-429) requests and most arrivals in any window of `windowMs`. */
  maxInWindow(windowMs: number, filter?: RequestFilter): WindowCounts;
  /** Logged requests matching `filter`. */
  received(filter?: RequestFilter): number;
  /** Logged requests matching `filter`, oldest first. */
  requests(filter?: RequestFilter): RequestRecord[];
  /** Clear the request log and counters, and the batch API's counters (its batches go on). */
  resetStats(): void;
  /** What the providers' batch API did: batches by status, lines, and what they cost. */
  batchStats(): BatchApiStats;
  /** Replaces `https://api.endpoints.huggingface.cloud` (the endpoints' management API). */
  readonly endpointsApiUrl: string;
  /** Set (or replace) an Inference Endpoint; it starts over in its initial state. */
  setEndpoint(name: string, config?: EndpointConfigInput): void;
  /** The URL to call an endpoint at (the client's `endpointUrl`). */
  endpointUrl(name: string): string;
  /** An endpoint's state and counters (throws for an unknown name). */
  endpointStats(name: string): EndpointStats;
  /** Reset every endpoint's counters (max in flight, statuses, wake requests). */
  resetEndpointStats(): void;
  /** Close the server and every socket, hung requests included. */
  close(): Promise<void>;
}

export async function startSim(options: SimOptions = {}): Promise<Sim> {
  const { port = 0, host = '127.0.0.1', now = () => performance.now(), endpoints, ...patch } = options;
  const state = new SimState(defaultConfig(), now);
  state.apply(parseConfigPatch(patch, 'options'));
  const simEndpoints = new SimEndpoints(state);
  const setEndpoint = (name: string, config: EndpointConfigInput = {}): void =>
    simEndpoints.set(name, parseEndpointConfig(name, config));
  for (const [name, config] of Object.entries(endpoints ?? {})) setEndpoint(name, config);

  const configure = (next: SimConfigPatch): void => state.apply(parseConfigPatch(next));
  const script = (token: string, steps: ScriptStep[]): void =>
    state.scripts.push(token === ANY_CALLER ? ANY_CALLER : secretId(token), parseScript(steps));
  const maxInWindow = (windowMs: number, filter?: RequestFilter): WindowCounts =>
    state.recorder.windowCounts(windowMs, filter);
  const resetStats = (): void => {
    state.recorder.reset();
    state.batches.resetStats();
  };

  const server = createSimServer(
    state,
    {
      stats: (includeLog, windows) => ({
        ...state.recorder.stats(state.credits.snapshot(), includeLog),
        maxInWindow: Object.fromEntries(windows.map((windowMs) => [windowMs, maxInWindow(windowMs)])),
        batches: state.batches.stats(),
      }),
      configure,
      resetStats,
      script,
    },
    simEndpoints,
  );
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.server.listen(port, host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const { port: bound } = server.server.address() as AddressInfo;
  const url = `http://${publicHost(host)}:${bound}`;
  state.url = url;

  return {
    url,
    hubUrl: `${url}/hub`,
    routerUrl: `${url}/router`,
    providerUrls: { together: `${url}/providers/together`, cerebras: `${url}/providers/cerebras` },
    configure,
    setToken: (token, config) => configure({ tokens: { [token]: config } }),
    setOrg: (name, config) => configure({ orgs: { [name]: config } }),
    setModel: (id, config) => configure({ models: { [id]: config } }),
    script,
    stats: () => state.recorder.stats(state.credits.snapshot(), true),
    maxInWindow,
    received: (filter) => state.recorder.records(filter).length,
    requests: (filter) => state.recorder.records(filter),
    resetStats,
    batchStats: () => state.batches.stats(),
    endpointsApiUrl: `${url}/endpoints-api`,
    setEndpoint,
    endpointUrl: (name) => `${url}/endpoints/${name}`,
    endpointStats: (name) => {
      const endpoint = simEndpoints.get(name);
      if (!endpoint) throw new Error(`no simulated endpoint "${name}"`);
      return endpoint.stats();
    },
    resetEndpointStats: () => simEndpoints.resetStats(),
    close: async () => {
      state.close();
      await server.close();
    },
  };
}

// A wildcard bind address is not something to connect to.
function publicHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}
