/**
 * One pass over an account's submitted provider batches (see docs/architecture.md, "Deadlines and
 * the batch route"): poll each, cancel one still unfinished at its hedge time, and hand a finished
 * one's results to the caller, closing its record only once the caller has applied them. One
 * process watches an account at a time (a lease); a pass that finds the lease held does nothing.
 */
import type { ProviderBatchClient } from './batch-api-client.js';
import { cancelBatch, pollBatch } from './batch-lifecycle.js';
import type { BatchRecord, BatchRecordStore } from './batch-record-store.js';
import type { BatchResults } from './batch-results.js';
import type { BatchView } from './batch-view.js';

export interface FinishedBatch {
  record: BatchRecord;
  view: BatchView;
  /** Every line the provider answered, by job id (failed lines carry their classified error). */
  results: BatchResults;
  /** Jobs with no line at all (the batch was cancelled or expired first): run them in real time. */
  unfinishedJobIds: string[];
}

export interface WatchOptions {
  store: BatchRecordStore;
  account: string;
  /** Epoch ms, compared with the records' hedge times. */
  nowMs: number;
  /** The client of the key that holds the record's batch; undefined skips the record this pass. */
  clientFor(record: BatchRecord): ProviderBatchClient | undefined;
  /** Apply a finished batch to its jobs. A throw keeps the record open: the next pass delivers it again. */
  deliver(finished: FinishedBatch): Promise<void>;
  /** How long one pass may hold the account's watch lease. @defaultValue 5 minutes */
  leaseMs?: number;
}

export type WatchAction = 'waiting' | 'hedged' | 'finished' | 'unsubmitted' | 'no-client';

export interface WatchedRecord {
  recordId: string;
  action: WatchAction;
  status: BatchView['status'] | undefined;
}

/** One pass; undefined when another process is watching the account. */
export async function watchBatches(options: WatchOptions): Promise<WatchedRecord[] | undefined> {
  return options.store.asWatcher(options.account, options.leaseMs ?? 300_000, () =>
    watchOpenRecords(options),
  );
}

/** The same pass, for a caller that already holds the account's watch lease (batch-route-runtime.ts). */
export async function watchOpenRecords(options: WatchOptions): Promise<WatchedRecord[]> {
  const seen: WatchedRecord[] = [];
  for (const record of await options.store.openRecords(options.account)) {
    seen.push(await watchRecord(options, record));
  }
  return seen;
}

/** One record's step of a pass: wait, cancel at the hedge time, or deliver and close. */
export async function watchRecord(options: WatchOptions, record: BatchRecord): Promise<WatchedRecord> {
  const done = (action: WatchAction, view?: BatchView): WatchedRecord => ({
    recordId: record.id,
    action,
    status: view?.status,
  });
  // Not yet created (or its creation not yet recorded): the submitter resumes it, not the watcher.
  if (!record.batchId) return done('unsubmitted');
  const client = options.clientFor(record);
  if (!client) return done('no-client');
  const { view, results } = await pollBatch(client, record);
  if (!results) {
    // A record already `cancelling` whose batch is not: the cancel was recorded, then not sent (a crash).
    const due = options.nowMs >= record.hedgeAtMs || record.state === 'cancelling';
    if (!due || view.status === 'cancelling') return done('waiting', view);
    return done('hedged', await cancelBatch(options.store, client, record));
  }
  const unfinishedJobIds = record.jobIds.filter((jobId) => !results.byJob.has(jobId));
  await options.deliver({ record, view, results, unfinishedJobIds });
  await options.store.update(record.account, record.id, { state: 'collected' });
  return done('finished', view);
}
