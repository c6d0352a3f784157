/**
 * @hfq/cli as a library: each `hfq` command as a function of the environment (and its arguments),
 * for running a worker or the board inside a process of your own. The `hfq` command itself is
 * `main.ts` (bin `hfq`). A command used the wrong way throws `UsageError`.
 */
export { runBoard } from './commands/board.js';
export { runCredits } from './commands/credits.js';
export { runDemo } from './commands/demo.js';
export { runEnqueue } from './commands/enqueue.js';
export { runLimit } from './commands/limit.js';
export { runQueue } from './commands/queue.js';
export { runRetry } from './commands/retry.js';
export { runSim } from './commands/sim.js';
export { runStatus } from './commands/status.js';
export { runWorker } from './commands/worker.js';
export { UsageError } from './usage.js';
