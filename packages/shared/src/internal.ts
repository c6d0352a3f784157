/**
 * @hfq/shared/internal: what the hfq packages share with each other (Redis keys and scripts, the
 * limiters and credit state, parsers, connection plumbing), for hfq's own packages, tests and
 * benchmarks. Not a public API: it changes with the packages that use it. The public entry is
 * `index.ts`; a name is exported from one entry only.
 */
export { readAccountRegistry, recordAccountQueue } from './account-registry.js';
export { providerKeyOf } from './account-schema.js';
export { COUNT_BATCH_CHILD } from './batch-count.js';
export { BATCH_ENDPOINT_BY_TASK, PARKING_WINDOW_MS, parkingDelayMs } from './batch-parking.js';
export { type BatchParentProgress, itemsDone, parentProgress } from './batch-progress.js';
export { type BatchSplitHalf, type BatchSplitOutput, splitHalvesOf } from './batch-split.js';
export {
  learnedNoise,
  NOISE_CAP_SENDS,
  NOISE_HALF_LIFE_WINDOWS,
  NOISE_MIN_SENDS,
  NOISE_PRIOR,
  type NoiseLevel,
  noiseRetryDelayMs,
  type Verdict,
} from './congestion-detector.js';
export { isConnectionLost } from './connection-lost.js';
export {
  type CreditScope,
  CreditState,
  type CreditStateOptions,
  creditScope,
  type GateStatus,
  keyScope,
  LEDGER_FIELDS,
  ledgerMonth,
  type SpendByRoute,
} from './credit-state.js';
export { DomainLimiter } from './domain-limiter.js';
export {
  type AcquireInput,
  type AcquireResult,
  type DomainLimiterOptions,
  type DomainRef,
  type DomainState,
  type OverrideOutcome,
  primaryWindow,
  type SetOverrideOptions,
  type ThrottleOutcome,
} from './domain-limiter-types.js';
export {
  appendToBacklogs,
  ENDPOINT_BACKLOG_TTL_MS,
  type EndpointBacklog,
  endpointFor,
  endpointServes,
  markEndpointDemand,
  type PublishedEndpoint,
  publishEndpoints,
  publishedEndpointsKey,
  readEndpointBacklog,
  readPublishedEndpoints,
} from './endpoint-backlog.js';
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
export { loadConnectionConfig, loadUpstreamUrls, parseLimits } from './env-config.js';
export { classifyUpstream, type UpstreamAnswer } from './errors.js';
export { routeIoredisConsole } from './ioredis-console.js';
export {
  BATCH_CHILD,
  BATCH_ID,
  BATCH_JOB_DATA,
  type BatchChild,
  type BatchJobData,
  JOB_DATA,
  JOB_SCHEMA_VERSION,
  type JobData,
  type JobProgressState,
} from './job-schema.js';
export {
  isLaneId,
  LANE_RECORD_MS,
  LANE_REGISTRY_TTL_MS,
  type LaneId,
  laneAnnouncement,
  laneEndpoint,
  laneOf,
  laneProvider,
  laneQueueName,
  laneRegistryKey,
  lanesChannel,
  parseLaneAnnouncement,
  ROUTER_LANE,
  readLanes,
  recordLanes,
} from './lanes.js';
export { refreshLease, releaseLease, withLease } from './lease.js';
export {
  accountQueueName,
  BATCH_FIELDS,
  batchAccountKey,
  batchQueueName,
  batchStateKey,
  checkPrefix,
  hashTag,
  prefixProblem,
  REGISTRY_TAG,
  stateKey,
} from './queue-names.js';
export type { RateChange, RateChangeReason } from './rate-change.js';
export { parseStatedLimit } from './rate-headers.js';
export { etaMs, RECENT_RATE_WINDOW_MS, recentRate } from './recent-rate.js';
export { redisOptions, whenReady } from './redis.js';
export { checkRedisTarget } from './redis-check.js';
export {
  type BlockingSource,
  blockingConnection,
  blockingSourceFor,
  type ConnectionRole,
  connectionFor,
  isCluster,
  type RedisClient,
} from './redis-cluster.js';
export {
  type ErrorLine,
  REDIS_ERROR_REPEAT_MS,
  RedisErrorLog,
  type RedisErrorLogOptions,
} from './redis-error-log.js';
export { describeMemory, isRedisOutOfMemory, type RedisMemory, readRedisMemory } from './redis-memory.js';
export { RedisScript, type ScriptArg } from './redis-script.js';
export { redisTimeMs } from './redis-time.js';
export {
  ResultLedger,
  type ResultReuseSettings,
  type ReusableResult,
} from './result-ledger.js';
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
export { sleep } from './sleep.js';
export {
  accountHoldKey,
  creditGateKey,
  domainStateKey,
  operatorPauseKey,
  resultLedgerKey,
  spendLedgerKey,
} from './state-keys.js';
export {
  accountBudgetUsd,
  type BudgetSettings,
  budgetSetting,
  TIER_TABLE,
  type TierInfo,
  tierMonthlyCreditsUsd,
} from './tiers.js';
export { REQUEST_TOO_LARGE } from './upstream-texts.js';
export { parseOrThrow } from './validation.js';
