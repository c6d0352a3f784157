import { readFileSync } from 'node:fs';

/**
 * The script that counts a batch child's items once, ok or failed (`lua/count-batch-child.lua`,
 * with its contract): the worker's batch runtime runs it before BullMQ records the child as
 * finished, so the parent always sees final counts.
 */
export const COUNT_BATCH_CHILD_LUA = readFileSync(
  new URL('./lua/count-batch-child.lua', import.meta.url),
  'utf8',
);
