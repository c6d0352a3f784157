/**
 * @hfq/producer/internal: for hfq's own CLI and tests, not a public API. The public entry is `index.ts`.
 */
export { batchHooks } from './batch-hooks.js';
export { DEADLINE_FORMS, readDeadline } from './deadline-option.js';
