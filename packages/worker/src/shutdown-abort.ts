/**
 * The abort a graceful shutdown (shutdown.ts) gives the jobs still running at the end of its
 * grace, in a module of its own: the account runtime reads it without depending on the shutdown,
 * which depends on the worker.
 */

/** The abort reason a graceful shutdown gives the jobs still running at the end of the grace. */
export const SHUTDOWN_ABORT_REASON = 'hfq:shutdown';

/** True when the run's signal was aborted by a graceful shutdown (not by a timeout or a caller). */
export function isShutdownAbort(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true && signal.reason === SHUTDOWN_ABORT_REASON;
}
