/**
 * How far a batch is, from the counters of its state in Redis (`BATCH_FIELDS`). The producer reads
 * them for `Batch.progress()`; the worker writes them, with the percent done, on the batch's
 * parent job, where Bull Board shows them.
 */

/** Items done out of a batch's total, and where the batch is in its life. */
export interface BatchProgress {
  /** Items added so far (the final count once `sealed`). */
  total: number;
  /** `ok + failed + cancelled`. */
  done: number;
  ok: number;
  failed: number;
  /** Counted when the batch finishes. */
  cancelled: number;
  /** Every item is added (or the producer stopped: `abandoned`). */
  sealed: boolean;
  /** The parent job ran: every child finished or was cancelled. */
  finished: boolean;
  cancelRequested: boolean;
}

/** What a batch parent shows as progress: Bull Board draws `progress` (percent) and lists the rest. */
export type BatchParentProgress = Omit<BatchProgress, 'finished' | 'cancelRequested'> & { progress: number };

/** Items done: each item ends ok, failed or cancelled. */
export function itemsDone(counts: Pick<BatchProgress, 'ok' | 'failed' | 'cancelled'>): number {
  return counts.ok + counts.failed + counts.cancelled;
}

/** The parent job's progress value from the batch's counters. */
export function parentProgress(
  counts: Pick<BatchProgress, 'total' | 'ok' | 'failed' | 'cancelled' | 'sealed'>,
): BatchParentProgress {
  const done = itemsDone(counts);
  return {
    progress: counts.total > 0 ? Math.floor((100 * done) / counts.total) : 0,
    total: counts.total,
    done,
    ok: counts.ok,
    failed: counts.failed,
    cancelled: counts.cancelled,
    sealed: counts.sealed,
  };
}
