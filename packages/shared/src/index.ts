export {
  ACCOUNT_REGISTRY_TTL_SECONDS,
  accountRegistryKey,
  readAccountRegistry,
  recordAccountQueue,
} from './account-registry.js';
export {
  ACCOUNT_CONFIG,
  ACCOUNTS,
  type AccountConfig,
  type AccountConfigInput,
  providerKeyOf,
  RATE_WINDOW,
  type RateWindow,
} from './account-schema.js';
export { type BatchParentProgress, type BatchProgress, itemsDone, parentProgress } from './batch-progress.js';
export { type BatchSplitHalf, type BatchSplitOutput, splitHalvesOf } from './batch-split.js';
export { noiseRetryDelayMs, type Verdict } from './congestion-detector.js';
export {
  type CreditScope,
  CreditState,
  type CreditStateOptions,
  creditScope,
  DEFAULT_CREDIT_PROBE_MS,
  type GateStatus,
  HELD_GATE_TTL_MS,
  keyScope,
  LEDGER_FIELDS,
  LEDGER_TTL_MS,
  ledgerMonth,
  nextMonthlyReset,
  type SpendByRoute,
} from './credit-state.js';
export {
  type AcquireInput,
  type AcquireResult,
  DomainLimiter,
  type DomainRef,
  type DomainState,
  type LimiterOptions,
  primaryWindow,
  sleep,
  type ThrottleOutcome,
} from './domain-limiter.js';
export {
  ENDPOINT_CONFIG,
  ENDPOINTS,
  type EndpointConfig,
  ROUTING_POLICIES,
  ROUTING_POLICY,
  type RoutingPolicy,
} from './endpoint-schema.js';
export {
  type EndpointRef,
  EndpointSemaphore,
  endpointKeys,
  type SemaphoreOptions,
  type SemaphoreState,
  type SlotResult,
} from './endpoint-semaphore.js';
export {
  ENDPOINT_OK_TTL_MS,
  type EndpointAvailability,
  type EndpointStatus,
  EndpointStatusStore,
} from './endpoint-status.js';
export {
  ConfigError,
  type Env,
  type HfqConfig,
  KNOWN_VARIABLES,
  loadConfig,
  loadConnectionConfig,
  parseLimits,
  readInt,
  readPairs,
  readString,
  type UpstreamUrls,
} from './env-config.js';
export {
  AccountHeldError,
  CreditsExhaustedError,
  classifyUpstream,
  HfqError,
  KeyRefusedError,
  MalformedOutputError,
  ModelNotSupportedError,
  ModelRefusedError,
  PermanentUpstreamError,
  type RetryClass,
  ThrottledError,
  TransientUpstreamError,
  type UpstreamAnswer,
  type UpstreamErrorInfo,
  upstreamMessage,
} from './errors.js';
export {
  BATCH_CHILD,
  BATCH_ID,
  BATCH_JOB_DATA,
  type BatchChild,
  type BatchJobData,
  JOB,
  JOB_DATA,
  JOB_SCHEMA_VERSION,
  type Job,
  type JobData,
  type JobProgressState,
  TASKS,
  type Task,
} from './job-schema.js';
export { withLease } from './lease.js';
export * as LIMITS from './limits.js';
export { createLogger, defaultLogFormat, type Logger, type LoggerOptions, REDACTED_PATHS } from './logger.js';
export {
  accountQueueName,
  BATCH_FIELDS,
  batchAccountKey,
  batchQueueName,
  batchStateKey,
  DEFAULT_PREFIX,
  hashTag,
  REGISTRY_TAG,
  stateKey,
} from './queue-names.js';
export { parseStatedLimit } from './rate-headers.js';
export {
  type ConnectionInput,
  createProducerConnection,
  createWorkerConnection,
  redisOptions,
  whenReady,
} from './redis.js';
export { checkRedisTarget, RedisTargetError } from './redis-check.js';
export {
  type BlockingSource,
  blockingConnection,
  blockingSourceFor,
  type ClusterConnection,
  type Connection,
  type ConnectionRole,
  connectionFor,
  isCluster,
  isClusterTarget,
  type RedisClient,
} from './redis-cluster.js';
export { describeClusterNodes, parseClusterNodes } from './redis-env.js';
export { describeMemory, isRedisOutOfMemory, type RedisMemory, readRedisMemory } from './redis-memory.js';
export {
  type BinaryOutput,
  DEFAULT_ATTEMPTS,
  DEFAULT_BACKOFF,
  DEFAULT_RETENTION,
  type InferenceResult,
} from './result.js';
export {
  type HeaderLookup,
  parseBodyReset,
  parseProviderReset,
  parseRateLimitReset,
  parseRetryAfter,
  statedThrottleDelay,
  type ThrottleDelay,
} from './retry-after.js';
export { credentialId, maskUrlCredentials, scrubSecrets } from './secrets.js';
export {
  accountHoldKey,
  creditGateKey,
  domainStateKey,
  spendLedgerKey,
  taggedScope,
} from './state-keys.js';
export {
  accountBudgetUsd,
  TIER_TABLE,
  TIERS,
  type Tier,
  type TierInfo,
  tierMonthlyCreditsUsd,
} from './tiers.js';
export { MODEL_NOT_SUPPORTED, mentionsCredits, REQUEST_TOO_LARGE } from './upstream-texts.js';
export { parseOrThrow, ValidationError } from './validation.js';
