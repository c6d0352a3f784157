export type {
  BatchApiConfig,
  BatchApiPatch,
  BatchApiStyle,
  BatchTurnaround,
} from './batches/batch-config.js';
export type { BatchApiStats, BatchTokenStats } from './batches/batch-store.js';
export { DEFAULT_CATALOG } from './catalog.js';
export type {
  CreditConfig,
  CreditMessageKey,
  DirectProviderName,
  FaultConfig,
  HubConfig,
  LatencyConfig,
  ModelConfig,
  OrgConfig,
  ProviderMappingConfig,
  ProviderName,
  RateLimitConfig,
  SimConfigPatch,
  ThrottleStyle,
  ThrottleTarget,
  TokenConfig,
} from './config.js';
export { DEFAULT_EMBEDDING_DIMS } from './config.js';
export { parseConfigPatch, parseScript, SimConfigError } from './config-validate.js';
export {
  DEFAULT_ENDPOINT,
  ENDPOINT_STATES,
  type EndpointConfig,
  type EndpointConfigInput,
  type EndpointState,
  type EndpointTask,
} from './endpoints/endpoint-config.js';
export { INVALID_STATE, OVERLOADED } from './endpoints/endpoint-routes.js';
export type { EndpointStats } from './endpoints/sim-endpoint.js';
export { parseSimEnv, type SimEnv, SimEnvError } from './env.js';
export { FixedWindowLimiter } from './limiters/fixed-window.js';
export { type LimitDecision, type Limiter, tryAcquire } from './limiters/limiter.js';
export { SlidingWindowLimiter } from './limiters/sliding-window.js';
export { TokenBucketLimiter } from './limiters/token-bucket.js';
export { maxInWindow } from './max-in-window.js';
export {
  type ChatMessageLike,
  type ChatUsage,
  type ClassificationLabel,
  estimateTokens,
  expectedChatContent,
  expectedChatUsage,
  expectedClassification,
  expectedEmbedding,
  expectedGeneratedText,
  expectedImagePng,
  expectedSimilarity,
} from './outputs.js';
export { runSimProcess } from './process.js';
export type {
  AuthorizationKind,
  FaultKind,
  RecordQuery,
  RequestFilter,
  RequestRecord,
  RouteKind,
  SimStats,
  WindowCounts,
} from './recorder.js';
export type { ScriptStep } from './scripts.js';
export { type ProviderUrls, type Sim, type SimOptions, startSim } from './sim.js';
export { CREDIT_MESSAGES, RATE_LIMIT_LEGACY, RATE_LIMIT_REACHED } from './texts.js';
