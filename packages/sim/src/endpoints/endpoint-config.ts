/**
 * An Inference Endpoint as the simulator models it: dedicated replicas with a fixed number of
 * concurrent slots each, latency that grows with the requests in flight, scale to zero with a
 * cold start, pause, and a management API. Validated here, apart from the router's config.
 */
import { SimConfigError } from '../config-validate.js';

/** States the management API reports (`status.state`). */
export const ENDPOINT_STATES = [
  'pending',
  'initializing',
  'updating',
  'updateFailed',
  'running',
  'paused',
  'failed',
  'scaledToZero',
] as const;
export type EndpointState = (typeof ENDPOINT_STATES)[number];

/** Tasks an endpoint may serve (the serving container's pipeline). */
export const ENDPOINT_TASKS = [
  'feature-extraction',
  'sentence-similarity',
  'text-classification',
  'text-generation',
  'text-to-image',
  'chat-completion',
] as const;
export type EndpointTask = (typeof ENDPOINT_TASKS)[number];

export interface EndpointConfig {
  /** Namespace in the management API path. @defaultValue `'sim'` */
  namespace: string;
  /** Task of the serving container. @defaultValue `'feature-extraction'` */
  task: EndpointTask;
  /** Hugging Face model id the endpoint serves. @defaultValue `'sim/endpoint-model'` */
  model: string;
  /** Replicas while running. @defaultValue `1` */
  replicas: number;
  /** Concurrent requests per replica; past replicas × slots the container answers 429. @defaultValue `4` */
  slotsPerReplica: number;
  /** Latency of an admitted request: `baseMs + perInFlightMs × (others in flight) + jitter`. */
  latency: { baseMs: number; perInFlightMs: number; jitterMs: number };
  /** Time from scaled-to-zero (or paused) to a ready replica. @defaultValue `2000` */
  coldStartMs: number;
  /** Scale to zero after this long without requests; null never. @defaultValue `null` */
  idleScaleToZeroMs: number | null;
  /** State when configured. @defaultValue `'running'` */
  initialState: EndpointState;
  /** The only bearer token accepted (inference and management); null accepts any `hf_` token. */
  token: string | null;
  /** Hourly price per replica, for the replica-time bill in stats. @defaultValue `0` */
  hourlyUsd: number;
}

export type EndpointConfigInput = Partial<Omit<EndpointConfig, 'latency'>> & {
  latency?: Partial<EndpointConfig['latency']>;
};

export const DEFAULT_ENDPOINT: EndpointConfig = {
  namespace: 'sim',
  task: 'feature-extraction',
  model: 'sim/endpoint-model',
  replicas: 1,
  slotsPerReplica: 4,
  latency: { baseMs: 20, perInFlightMs: 0, jitterMs: 0 },
  coldStartMs: 2_000,
  idleScaleToZeroMs: null,
  initialState: 'running',
  token: null,
  hourlyUsd: 0,
};

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

function fail(path: string, value: unknown, expected: string): never {
  throw new SimConfigError(`${path}: expected ${expected}, got ${JSON.stringify(value)}`);
}

function num(value: unknown, path: string, min: number, integer = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min)
    fail(path, value, `a number ≥ ${min}`);
  if (integer && !Number.isInteger(value)) fail(path, value, 'an integer');
  return value;
}

/** Validate an endpoint's name and config (from JavaScript, a JSON file or `POST /_sim/endpoints`). */
export function parseEndpointConfig(name: unknown, input: unknown, path = 'endpoints'): EndpointConfig {
  if (typeof name !== 'string' || !NAME.test(name)) fail(`${path}.name`, name, 'a lowercase endpoint name');
  const at = `${path}.${name}`;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) fail(at, input, 'an object');
  const raw = input as Record<string, unknown>;
  const known = new Set([...Object.keys(DEFAULT_ENDPOINT)]);
  for (const key of Object.keys(raw)) if (!known.has(key)) fail(`${at}.${key}`, key, 'a known field');
  const config: EndpointConfig = { ...DEFAULT_ENDPOINT, latency: { ...DEFAULT_ENDPOINT.latency } };
  if (raw.namespace !== undefined) {
    if (typeof raw.namespace !== 'string' || !NAME.test(raw.namespace))
      fail(`${at}.namespace`, raw.namespace, 'a lowercase namespace');
    config.namespace = raw.namespace;
  }
  if (raw.task !== undefined) {
    if (!ENDPOINT_TASKS.includes(raw.task as EndpointTask))
      fail(`${at}.task`, raw.task, `one of ${ENDPOINT_TASKS.join(', ')}`);
    config.task = raw.task as EndpointTask;
  }
  if (raw.model !== undefined) {
    if (typeof raw.model !== 'string' || raw.model === '') fail(`${at}.model`, raw.model, 'a model id');
    config.model = raw.model;
  }
  if (raw.replicas !== undefined) config.replicas = num(raw.replicas, `${at}.replicas`, 1, true);
  if (raw.slotsPerReplica !== undefined)
    config.slotsPerReplica = num(raw.slotsPerReplica, `${at}.slotsPerReplica`, 1, true);
  if (raw.latency !== undefined) {
    if (typeof raw.latency !== 'object' || raw.latency === null)
      fail(`${at}.latency`, raw.latency, 'an object');
    const latency = raw.latency as Record<string, unknown>;
    for (const key of ['baseMs', 'perInFlightMs', 'jitterMs'] as const) {
      if (latency[key] !== undefined) config.latency[key] = num(latency[key], `${at}.latency.${key}`, 0);
    }
  }
  if (raw.coldStartMs !== undefined) config.coldStartMs = num(raw.coldStartMs, `${at}.coldStartMs`, 0);
  if (raw.idleScaleToZeroMs !== undefined) {
    config.idleScaleToZeroMs =
      raw.idleScaleToZeroMs === null ? null : num(raw.idleScaleToZeroMs, `${at}.idleScaleToZeroMs`, 1);
  }
  if (raw.initialState !== undefined) {
    if (!ENDPOINT_STATES.includes(raw.initialState as EndpointState))
      fail(`${at}.initialState`, raw.initialState, `one of ${ENDPOINT_STATES.join(', ')}`);
    config.initialState = raw.initialState as EndpointState;
  }
  if (raw.token !== undefined) {
    if (raw.token !== null && (typeof raw.token !== 'string' || raw.token === ''))
      fail(`${at}.token`, '<redacted>', 'a token or null');
    config.token = raw.token as string | null;
  }
  if (raw.hourlyUsd !== undefined) config.hourlyUsd = num(raw.hourlyUsd, `${at}.hourlyUsd`, 0);
  return config;
}
