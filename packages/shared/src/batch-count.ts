import { luaScript } from './redis-script.js';

/**
 * The script that counts a batch child's items once, ok or failed (`lua/count-batch-child.lua`,
 * with its contract): the worker's batch runtime runs it before BullMQ records the child as
 * finished, so the parent always sees final counts.
 */
export const COUNT_BATCH_CHILD = luaScript('count-batch-child');
