/** Default BullMQ key prefix. Use a hash tag such as `{hfq}` on Redis Cluster. */
export const DEFAULT_PREFIX = 'hfq';

/** The queue of one account. One queue per account (see docs/architecture.md, "One queue per account"). */
export function accountQueueName(accountId: string): string {
  return `account-${accountId}`;
}

/** The batch queue of an account: batch parent jobs and their seal jobs (see docs/architecture.md, "Batches are flows"). */
export function batchQueueName(accountId: string): string {
  return `batch-${accountId}`;
}

/**
 * Redis keys of a batch's own state (see docs/architecture.md, "Batches are flows"): the hash of counters (`BATCH_FIELDS`), the list of
 * item counts per child in input order (`layout`), the set of children already counted (`counted`).
 */
export function batchStateKey(prefix: string, batchId: string, part?: 'layout' | 'counted'): string {
  return part ? stateKey(prefix, 'batch', batchId, part) : stateKey(prefix, 'batch', batchId);
}

/** Fields of the batch state hash. */
export const BATCH_FIELDS = {
  account: 'account',
  /** Items added so far (final once sealed). */
  total: 'total',
  /** Items whose child completed / failed for good. */
  ok: 'ok',
  failed: 'failed',
  /** Items cancelled; written when the batch finishes. */
  cancelled: 'cancelled',
  /** `1` once every item is added; `abandoned` when the producer stopped before sealing. */
  sealed: 'sealed',
  /** `1` once `batch.cancel()` was called. */
  cancelRequested: 'cancelRequested',
  /** Why the input stopped (an invalid item, a failing iterator), when it did. */
  error: 'error',
  /** `1` once the parent job ran. */
  finished: 'finished',
} as const;

/** Redis keys of hfq's own state (limits, credits, spend), under the same prefix as BullMQ's. */
export function stateKey(prefix: string, ...parts: string[]): string {
  return [prefix, 'hfq', ...parts].join(':');
}
