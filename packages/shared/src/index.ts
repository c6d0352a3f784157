/**
 * @hfq/shared, the public entry: the schemas a user writes jobs and accounts against, the
 * configuration loader, the error classes and the result type. The plumbing the other hfq
 * packages share (Redis keys, scripts, limiters, parsers) is `@hfq/shared/internal`, which may
 * change in any release.
 */
export {
  ACCOUNT_CONFIG,
  ACCOUNTS,
  type AccountConfig,
  type AccountConfigInput,
  type RateWindow,
} from './account-schema.js';
export type { BatchProgress } from './batch-progress.js';
export { ConfigError } from './config-error.js';
export { canonicalJson, contentJobId, isSampling } from './content-id.js';
export type { LimiterOptions } from './domain-limiter-types.js';
export {
  ENDPOINT_CONFIG,
  type EndpointConfig,
  ROUTING_POLICIES,
  type RoutingPolicy,
} from './endpoint-schema.js';
export {
  type Env,
  type HfqConfig,
  KNOWN_VARIABLES,
  loadConfig,
  type UpstreamUrls,
} from './env-config.js';
export {
  AccountHeldError,
  CreditsExhaustedError,
  EndpointColdError,
  EndpointPausedError,
  EndpointRefusedError,
  HfqError,
  KeyRefusedError,
  MalformedOutputError,
  ModelNotSupportedError,
  ModelRefusedError,
  PermanentUpstreamError,
  type RetryClass,
  ThrottledError,
  TransientUpstreamError,
  type UpstreamErrorInfo,
} from './errors.js';
export { JOB, type Job, TASKS, type Task } from './job-schema.js';
export * as LIMITS from './limits.js';
export { createLogger, type Logger, type LoggerOptions } from './logger.js';
export { DEFAULT_PREFIX } from './queue-names.js';
export type { ConnectionInput } from './redis.js';
export { RedisTargetError } from './redis-check.js';
export type { ClusterConnection, Connection } from './redis-cluster.js';
export {
  type BinaryOutput,
  DEFAULT_ATTEMPTS,
  DEFAULT_BACKOFF,
  DEFAULT_RETENTION,
  type InferenceResult,
} from './result.js';
export { TIERS, type Tier } from './tiers.js';
export { ValidationError } from './validation.js';
