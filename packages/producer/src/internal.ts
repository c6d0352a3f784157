/**
 * @hfq/producer/internal: for hfq's own tests, not a public API. The public entry is `index.ts`.
 */
export { batchHooks } from './batch-hooks.js';
