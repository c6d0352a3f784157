/**
 * The simulator's configuration: its types, its defaults, and how a partial patch is merged
 * into a full config. Validation of untrusted input (JSON from a file or `POST /_sim/config`)
 * lives in `config-validate.ts`.
 */
import {
  type BatchApiConfig,
  type BatchApiPatch,
  defaultBatchApiConfig,
  mergeBatchApiConfig,
} from './batches/batch-config.js';
import { DEFAULT_CATALOG, type ModelConfig } from './catalog.js';
import type { DirectProviderName, ProviderName } from './providers.js';

// The catalog owns the model types and providers.ts the provider names; re-exported here for
// the modules that read them with the rest of the config.
export type { ModelConfig, ProviderMappingConfig } from './catalog.js';
export { DIRECT_PROVIDERS, type DirectProviderName, PROVIDERS, type ProviderName } from './providers.js';

/** One rate limit. Several can apply to one request; all must admit it. */
export interface RateLimitConfig {
  /** How the window is counted. */
  algorithm: 'sliding-window' | 'token-bucket' | 'fixed-window';
  /** Units admitted per window (for a token bucket: the refill per window, and the default capacity). */
  limit: number;
  /** Window length in milliseconds. */
  windowMs: number;
  /**
   * Token bucket only: bucket capacity.
   * @defaultValue `limit`
   */
  burst?: number;
  /**
   * Which requests share the counter: all requests of the token, or the token's requests to one
   * provider. Ignored for `providerLimits`, which are shared by every caller of the provider.
   * @defaultValue `'token'`
   */
  scope?: 'token' | 'token+provider';
  /**
   * What one admission costs: 1 per request, or the request's estimated tokens
   * (prompt characters / 4, plus `max_tokens` when the body sets it, else the completion length).
   * @defaultValue `'requests'`
   */
  unit?: 'requests' | 'tokens';
  /**
   * Sliding window only: the limit changes during a run, to each entry's `limit` from `afterMs`
   * after the limiter's first request on (a provider that halves its limit at peak hours). The
   * admissions already in the window keep counting.
   * @defaultValue none (the limit never changes)
   */
  schedule?: { afterMs: number; limit: number }[];
}

/** The four credit-exhaustion wordings the Hugging Face router has been seen to send. */
export type CreditMessageKey =
  | 'monthly-included-exceeded'
  | 'monthly-included-depleted'
  | 'no-remaining-credits'
  | 'endpoints-monthly-exceeded';

/** A credit balance, for a token or an organisation. */
export interface CreditConfig {
  /** Starting balance in US dollars. Setting the token or org again resets it. */
  balanceUsd: number;
  /**
   * Charged per admitted request.
   * @defaultValue `0.0001`
   */
  costPerRequestUsd?: number;
  /**
   * Charged per input item (array inputs count each element).
   * @defaultValue `0`
   */
  costPerItemUsd?: number;
  /**
   * Which upstream wording the exhaustion answer carries (router only; direct providers use their own).
   * @defaultValue `'monthly-included-exceeded'`
   */
  creditMessage?: CreditMessageKey;
  /**
   * Answer exhaustion with 402 (true) or with the same wording as a 429 (false).
   * @defaultValue `true`
   */
  as402?: boolean;
}

/** Random failures. Each rate is a probability in 0..1, drawn from the seeded PRNG. */
export interface FaultConfig {
  /** 500 `{"error":"Internal Server Error"}`. @defaultValue `0` */
  error5xxRate: number;
  /** 503, body per `overloadedStyle`. @defaultValue `0` */
  overloadedRate: number;
  /** `'plain'`: text `Service Temporarily Unavailable`; `'loading'`: legacy model-loading JSON. @defaultValue `'plain'` */
  overloadedStyle: 'plain' | 'loading';
  /** 200 with a JSON content type and a body that is not JSON. @defaultValue `0` */
  garbageRate: number;
  /** An nginx-style HTML page with status `htmlStatus`. @defaultValue `0` */
  htmlRate: number;
  /** Status of the HTML page. @defaultValue `502` */
  htmlStatus: number;
  /** 200 whose JSON body is cut in half (Content-Length matches the cut body). @defaultValue `0` */
  truncatedJsonRate: number;
  /** 200 with a JSON body of `oversizedBytes`. @defaultValue `0` */
  oversizedRate: number;
  /** Size of the oversized body. @defaultValue `16 MiB` */
  oversizedBytes: number;
  /** Never answer; the request ends when the client aborts or the sim closes. @defaultValue `0` */
  hangRate: number;
  /** Destroy the socket without answering. @defaultValue `0` */
  resetRate: number;
}

/** Added delay before an admitted request is answered (rejections answer at once). */
export interface LatencyConfig {
  /** Fixed part. @defaultValue `0` */
  baseMs: number;
  /** Uniform extra delay in 0..jitterMs. @defaultValue `0` */
  jitterMs: number;
  /** With `maxMs`: uniform delay in minMs..maxMs, replacing baseMs + jitter. @defaultValue unset */
  minMs?: number;
  /** See `minMs`. @defaultValue unset */
  maxMs?: number;
  /** Extra delay per input item. @defaultValue `0` */
  perItemMs: number;
}

/** How a 429 (and optionally a success) reports the limit. */
export interface ThrottleStyle {
  /** `Retry-After` as ceil(seconds), as an HTTP date, or absent. */
  retryAfter: 'seconds' | 'http-date' | 'none';
  /** Which family of rate-limit headers to send. */
  rateLimitHeaders: 'none' | 'ietf' | 'together' | 'cerebras';
  /** Send the rate-limit headers on successful answers too. */
  rateLimitHeadersOnSuccess: boolean;
  /** Shape and wording of the 429 body. */
  body: 'hf' | 'hf-legacy' | 'together' | 'replicate' | 'cerebras';
}

/** Where a request came in: the router, or a provider's direct API. */
export type ThrottleTarget = 'router' | DirectProviderName;

/** Per-token (or per-provider-key) behaviour. */
export interface TokenConfig {
  /** Name shown in stats instead of the token. @defaultValue `token-<sha256 prefix>` */
  label?: string;
  /** Inference rate limits. @defaultValue none (unlimited) */
  limits?: RateLimitConfig[];
  /** Hub API limits for this token. @defaultValue `hub.limits` */
  hubLimits?: RateLimitConfig[];
  /** Credit balance. @defaultValue none (unlimited) */
  credits?: CreditConfig;
  /** A revoked token gets 401. @defaultValue `false` */
  revoked?: boolean;
  /** Organisations this token may bill with `X-HF-Bill-To`. @defaultValue `[]` */
  orgs?: string[];
  /** Fault rates overriding the global ones field by field. @defaultValue global faults */
  faults?: Partial<FaultConfig>;
  /** Latency overriding the global one field by field. @defaultValue global latency */
  latency?: Partial<LatencyConfig>;
  /** 429 style overriding the route's style field by field. @defaultValue the route's style */
  throttleStyle?: Partial<ThrottleStyle>;
  /** Provider keys only: the direct APIs that accept this key. @defaultValue all */
  providers?: DirectProviderName[];
  /**
   * Share of admitted requests answered 429 at once, with no Retry-After and no rate headers, as
   * a busy provider does behind the router ("model too busy"): the request counts against the
   * limits like any admitted one; the share does not depend on the rate.
   * @defaultValue `0`
   */
  busyShare?: number;
  /**
   * The busy share changes during a run: from each entry's `afterMs` after the token's first
   * inference request on, the share is that entry's (before the first entry, `busyShare`).
   * @defaultValue none
   */
  busySchedule?: { afterMs: number; share: number }[];
}

/** An organisation that tokens can bill to. */
export interface OrgConfig {
  /** Pooled credits shared by every token billing to it. @defaultValue none (unlimited) */
  credits?: CreditConfig;
}

/** The Hub API (`/hub`). */
export interface HubConfig {
  /** Limits per token (or per anonymous caller). @defaultValue fixed window, 1000 per 300 s */
  limits: RateLimitConfig[];
  /** Answer `inferenceProviderMapping` as an object keyed by provider or as an array. @defaultValue `'object'` */
  mappingForm: 'object' | 'array';
  /** Send `RateLimit`/`RateLimit-Policy` on successful answers too. @defaultValue `true` */
  rateLimitHeadersOnSuccess: boolean;
  /** `Retry-After` on a Hub 429. @defaultValue `'none'` (the Hub reports the wait in `RateLimit`) */
  retryAfter: 'seconds' | 'http-date' | 'none';
}

/** The whole configuration; `SimConfigPatch` is what callers pass. */
export interface SimConfig {
  seed: number;
  unknownTokens: 'allow' | 'reject';
  defaultToken: TokenConfig;
  providerLimits: Partial<Record<ProviderName, RateLimitConfig[]>>;
  latency: LatencyConfig;
  faults: FaultConfig;
  throttleStyle: Record<ThrottleTarget, ThrottleStyle>;
  hub: HubConfig;
  maxItemsPerRequest: number | null;
  tooLargeStatus: 413 | 422;
  logLimit: number;
  tokens: Record<string, TokenConfig>;
  orgs: Record<string, OrgConfig>;
  models: Record<string, ModelConfig>;
  batchApi: BatchApiConfig;
}

/** A partial configuration, merged into the current one. */
export interface SimConfigPatch {
  /** Seed of the PRNG behind faults and jitter. @defaultValue `42` */
  seed?: number;
  /** What happens to a token not set with `setToken`. @defaultValue `'allow'` */
  unknownTokens?: 'allow' | 'reject';
  /** Policy applied to unknown tokens when they are allowed. @defaultValue `{}` (unlimited, no credit limit) */
  defaultToken?: TokenConfig;
  /** Limits shared by every caller of a provider (router and direct alike). @defaultValue `{}` */
  providerLimits?: Partial<Record<ProviderName, RateLimitConfig[]>>;
  /** Delay before answering admitted requests. @defaultValue no delay */
  latency?: Partial<LatencyConfig>;
  /** Global fault rates. @defaultValue all zero */
  faults?: Partial<FaultConfig>;
  /**
   * 429 style per entry point.
   * @defaultValue router: no Retry-After, no headers, `{"error":"Rate limit reached"}`;
   * together: Retry-After seconds + `x-ratelimit-*` (also on success), Together body;
   * cerebras: Retry-After seconds + Cerebras headers (also on success), Cerebras body.
   */
  throttleStyle?: Partial<Record<ThrottleTarget, Partial<ThrottleStyle>>>;
  /** Hub API behaviour. */
  hub?: Partial<HubConfig>;
  /** Largest array input accepted; larger gets `tooLargeStatus`. `null` = no cap. @defaultValue `null` */
  maxItemsPerRequest?: number | null;
  /** Status for an input over `maxItemsPerRequest`. @defaultValue `413` */
  tooLargeStatus?: 413 | 422;
  /** Entries kept in the request log. @defaultValue `200000` */
  logLimit?: number;
  /** Tokens and provider keys by their raw value; `null` removes one. */
  tokens?: Record<string, TokenConfig | null>;
  /** Organisations by name; `null` removes one. */
  orgs?: Record<string, OrgConfig | null>;
  /** Models by Hugging Face id; `null` removes one. @defaultValue the default catalog */
  models?: Record<string, ModelConfig | null>;
  /** The direct providers' batch API (`batches/batch-config.ts`). @defaultValue `defaultBatchApiConfig()` */
  batchApi?: BatchApiPatch;
}

export const DEFAULT_COST_PER_REQUEST_USD = 0.0001;
export const DEFAULT_EMBEDDING_DIMS = 8;
export const DEFAULT_LOG_LIMIT = 200_000;
export const DEFAULT_OVERSIZED_BYTES = 16 * 1024 * 1024;

export function defaultConfig(): SimConfig {
  return {
    seed: 42,
    unknownTokens: 'allow',
    defaultToken: {},
    providerLimits: {},
    latency: { baseMs: 0, jitterMs: 0, perItemMs: 0 },
    faults: {
      error5xxRate: 0,
      overloadedRate: 0,
      overloadedStyle: 'plain',
      garbageRate: 0,
      htmlRate: 0,
      htmlStatus: 502,
      truncatedJsonRate: 0,
      oversizedRate: 0,
      oversizedBytes: DEFAULT_OVERSIZED_BYTES,
      hangRate: 0,
      resetRate: 0,
    },
    throttleStyle: {
      router: { retryAfter: 'none', rateLimitHeaders: 'none', rateLimitHeadersOnSuccess: false, body: 'hf' },
      together: {
        retryAfter: 'seconds',
        rateLimitHeaders: 'together',
        rateLimitHeadersOnSuccess: true,
        body: 'together',
      },
      cerebras: {
        retryAfter: 'seconds',
        rateLimitHeaders: 'cerebras',
        rateLimitHeadersOnSuccess: true,
        body: 'cerebras',
      },
    },
    hub: {
      limits: [{ algorithm: 'fixed-window', limit: 1000, windowMs: 300_000 }],
      mappingForm: 'object',
      rateLimitHeadersOnSuccess: true,
      retryAfter: 'none',
    },
    maxItemsPerRequest: null,
    tooLargeStatus: 413,
    logLimit: DEFAULT_LOG_LIMIT,
    tokens: {},
    orgs: {},
    models: structuredClone(DEFAULT_CATALOG),
    batchApi: defaultBatchApiConfig(),
  };
}

/** Merge `patch` into `config`, returning a new config (the input is not modified). */
export function mergeConfig(config: SimConfig, patch: SimConfigPatch): SimConfig {
  const next: SimConfig = { ...config };
  if (patch.seed !== undefined) next.seed = patch.seed;
  if (patch.unknownTokens !== undefined) next.unknownTokens = patch.unknownTokens;
  if (patch.defaultToken !== undefined) next.defaultToken = patch.defaultToken;
  if (patch.providerLimits !== undefined)
    next.providerLimits = { ...config.providerLimits, ...patch.providerLimits };
  if (patch.latency !== undefined) next.latency = { ...config.latency, ...patch.latency };
  if (patch.faults !== undefined) next.faults = { ...config.faults, ...patch.faults };
  if (patch.throttleStyle !== undefined) {
    next.throttleStyle = {
      router: { ...config.throttleStyle.router, ...patch.throttleStyle.router },
      together: { ...config.throttleStyle.together, ...patch.throttleStyle.together },
      cerebras: { ...config.throttleStyle.cerebras, ...patch.throttleStyle.cerebras },
    };
  }
  if (patch.hub !== undefined) next.hub = { ...config.hub, ...patch.hub };
  if (patch.maxItemsPerRequest !== undefined) next.maxItemsPerRequest = patch.maxItemsPerRequest;
  if (patch.tooLargeStatus !== undefined) next.tooLargeStatus = patch.tooLargeStatus;
  if (patch.logLimit !== undefined) next.logLimit = patch.logLimit;
  if (patch.tokens !== undefined) next.tokens = mergeRecord(config.tokens, patch.tokens);
  if (patch.orgs !== undefined) next.orgs = mergeRecord(config.orgs, patch.orgs);
  if (patch.models !== undefined) next.models = mergeRecord(config.models, patch.models);
  if (patch.batchApi !== undefined) next.batchApi = mergeBatchApiConfig(config.batchApi, patch.batchApi);
  return next;
}

function mergeRecord<T>(current: Record<string, T>, patch: Record<string, T | null>): Record<string, T> {
  const next = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete next[key];
    else next[key] = value;
  }
  return next;
}
