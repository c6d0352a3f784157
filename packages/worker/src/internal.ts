/**
 * @hfq/worker/internal: pieces of the worker that hfq's CLI, tests and benchmarks use, not a
 * public API. The public entry is `index.ts`; a name is exported from one entry only.
 */
export { holdKey } from './account-runtime.js';
export { type BatchPlanSnapshot, readBatchPlans } from './batch-route/batch-plans.js';
export {
  type BatchRecord,
  type BatchRecordState,
  BatchRecordStore,
} from './batch-route/batch-record-store.js';
export {
  type DeadlineProjection,
  type ProjectionStatus,
  projectDeadline,
} from './batch-route/deadline-projection.js';
export { durationText, forecast } from './cockpit/forecast.js';
export { reusedSince, spendNotes } from './cockpit/spend-note.js';
export { estimateTokens } from './cost.js';
export { endpointAvailabilityText } from './endpoints/endpoint-status-view.js';
export { noiseText } from './noise-text.js';
export { checkUpstreamAndTokens, type UpstreamCheck } from './token-check.js';
export { rewriteUrl } from './upstream-fetch.js';
