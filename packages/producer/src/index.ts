/**
 * @hfq/producer: enqueue jobs and batches, and read their results. Test hooks are
 * `@hfq/producer/internal`, not part of this API.
 */
export type { BatchProgress } from '@hfq/shared';
export { type BatchOptions, type BatchSpec, DEFAULT_BATCH_PRIORITY } from './batch.js';
export type { FeedResult as BatchEnqueued } from './batch-feed.js';
export { Batch } from './batch-handle.js';
export { type BatchBase, COALESCING_TASKS } from './batch-items.js';
export {
  BatchAbandonedError,
  BatchInputError,
  type BatchItemResult,
  BatchTimeoutError,
  type ReadOptions as BatchReadOptions,
} from './batch-results.js';
export { type HeadroomOptions, NoHeadroomError } from './headroom.js';
export { JobFailedError, JobHandle, ResultTimeoutError } from './job-handle.js';
export {
  createProducer,
  EnqueueManyError,
  type EnqueueOptions,
  type InferenceResult,
  Producer,
  type ProducerOptions,
} from './producer.js';
