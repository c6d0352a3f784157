import type { Logger } from '@hfq/shared';
import type { Worker } from 'bullmq';
import { SHUTDOWN_ABORT_REASON } from './shutdown-abort.js';
import type { WorkerEvents } from './worker-events.js';

/**
 * Graceful shutdown of a worker process (see docs/architecture.md, "Retention and delivery"). Stop taking jobs at once; let the jobs in
 * flight finish within the grace; then abort the rest with the reason `SHUTDOWN_ABORT_REASON`.
 * The account runtime's processor sees that reason and throws `RateLimitError`, which BullMQ
 * answers with `moveJobFromActiveToWait`: the job goes back to the head of its queue at once, its
 * lock released, `attemptsMade` and its stall counter unchanged (only `attemptsStarted` counts
 * the run, as for every pacing wait). `worker.close(true)` would instead leave the jobs active
 * until their locks expire and count a stall for each.
 */

/**
 * What a graceful shutdown uses of a worker: its job events, each account's BullMQ workers, one
 * per lane (to hand the last jobs back) and its close. `HfqWorker` is one; declared here, by its user, so that
 * the account runtime (which reads `isShutdownAbort`) and the worker do not import each other.
 */
export interface ShutdownTarget {
  readonly events: Pick<WorkerEvents, 'on' | 'off'>;
  readonly runtimes: ReadonlyMap<string, { workers(): Iterable<Pick<Worker, 'cancelAllJobs'>> }>;
  close(): Promise<void>;
}

export interface ShutdownOptions {
  /** Time in-flight jobs get to finish before they are handed back. */
  graceMs: number;
  /** Time the hand-back itself may take after the grace (a few Redis round trips). @defaultValue 10000 */
  handBackTimeoutMs?: number;
  logger: Logger;
}

export interface ShutdownOutcome {
  /** Jobs that finished (completed or failed) after the stop began. */
  finished: number;
  /** Jobs aborted at the end of the grace and handed back to their queues. */
  handedBack: number;
  /** The worker did not close within grace + hand-back time. */
  timedOut: boolean;
}

/** Stop `worker` gracefully. Resolves when every connection is closed, or when the time is up. */
export async function shutdownGracefully(
  worker: ShutdownTarget,
  options: ShutdownOptions,
): Promise<ShutdownOutcome> {
  const { graceMs, logger } = options;
  const handBackTimeoutMs = options.handBackTimeoutMs ?? 10_000;
  const outcome: ShutdownOutcome = { finished: 0, handedBack: 0, timedOut: false };
  let graceOver = false;
  const count = (e: { outcome: 'completed' | 'failed' | 'requeued' }) => {
    if (graceOver && e.outcome === 'requeued') outcome.handedBack += 1;
    else if (e.outcome !== 'requeued') outcome.finished += 1;
  };
  worker.events.on('job', count);

  // close(): each BullMQ worker stops fetching at once, then waits for its active jobs.
  const closed = worker.close();
  let deadline: NodeJS.Timeout | undefined;
  const grace = setTimeout(() => {
    graceOver = true;
    logger.warn({ graceMs }, 'grace period over: handing the remaining jobs back to their queues');
    for (const runtime of worker.runtimes.values())
      for (const lane of runtime.workers()) lane.cancelAllJobs(SHUTDOWN_ABORT_REASON);
  }, graceMs);
  try {
    const done = await Promise.race([
      closed.then(() => true),
      new Promise<false>((resolve) => {
        deadline = setTimeout(() => resolve(false), graceMs + handBackTimeoutMs);
      }),
    ]);
    outcome.timedOut = !done;
    return outcome;
  } finally {
    clearTimeout(grace);
    clearTimeout(deadline);
    worker.events.off('job', count);
  }
}
