/**
 * Default BullMQ key prefix. hfq tags its keys itself, per unit of state (see
 * docs/redis-cluster.md, 'Key layout'): a prefix with braces would put every key in one slot.
 */
export const DEFAULT_PREFIX = 'hfq';

/**
 * Why `prefix` cannot be hfq's key prefix, or undefined when it can: at most 64 letters, digits,
 * `_`, `.`, `-`, and braces only as one whole, non-empty tag (`{hfq}`: every key in one slot). An
 * empty (`x{}`) or unbalanced (`hfq{`) brace changes which part of each key Redis Cluster hashes,
 * so keys of one unit of state land in different slots and every multi-key script fails.
 */
export function prefixProblem(prefix: string): string | undefined {
  if (!/^[A-Za-z0-9_{}.-]{1,64}$/.test(prefix))
    return 'expected 1 to 64 letters, digits, "_", ".", "-" or a "{tag}"';
  const braces = prefix.replace(/[^{}]/g, '');
  if (braces === '') return undefined;
  if (braces !== '{}' || !/\{[^{}]+\}/.test(prefix))
    return 'braces only as one whole, non-empty hash tag such as "{hfq}" (an empty or unbalanced brace breaks multi-key scripts on a Redis Cluster)';
  return undefined;
}

/** Throws a `RangeError` naming the option when `prefix` cannot be a key prefix (see `prefixProblem`). */
export function checkPrefix(prefix: string, option = 'prefix'): string {
  const problem = prefixProblem(prefix);
  if (problem) throw new RangeError(`${option} ${JSON.stringify(prefix)}: ${problem}`);
  return prefix;
}

/**
 * The hash tag of one unit of state: Redis Cluster hashes only what is between the first `{` and
 * the next `}`, so every key carrying `{unit}` lands in one slot, and a script or `MULTI` over that
 * unit's keys is allowed. Unit names (account ids, batch ids, domain ids) cannot contain braces.
 */
export function hashTag(unit: string): string {
  return `{${unit}}`;
}

/**
 * The queue of one account, its router lane (see docs/architecture.md, "Every route its own lane";
 * lanes.ts names the others). Tagged with the account, so BullMQ's keys of this queue share the
 * slot of the account's batch queue and other lanes.
 */
export function accountQueueName(accountId: string): string {
  return `account-${hashTag(accountId)}`;
}

/**
 * The batch queue of an account: batch parent jobs and their seal jobs (see docs/architecture.md,
 * "Batches are flows"). Same tag as the account
 * queue, because finishing a child (account queue) updates its parent (batch queue) in one script.
 */
export function batchQueueName(accountId: string): string {
  return `batch-${hashTag(accountId)}`;
}

/**
 * Redis keys of a batch's own state, tagged with its account: a chunk's children (account queue)
 * and its record in the layout are added in one MULTI, so both must hash to one slot. The hash of
 * counters (`BATCH_FIELDS`), the list of item counts per child in input order (`layout`), the set
 * of children already counted (`counted`).
 */
export function batchStateKey(
  prefix: string,
  account: string,
  batchId: string,
  part?: 'layout' | 'counted',
): string {
  const base = stateKey(prefix, 'batch', hashTag(account), batchId);
  return part ? `${base}:${part}` : base;
}

/**
 * Which account a batch belongs to, for a handle opened by id alone (`producer.batch(id)`):
 * tagged with the batch, written once when the batch is created, with the state's lifetime.
 */
export function batchAccountKey(prefix: string, batchId: string): string {
  return stateKey(prefix, 'batch-account', hashTag(batchId));
}

/** Fields of the batch state hash. */
export const BATCH_FIELDS = {
  account: 'account',
  /** The lane queue of every child (see lanes.ts); absent for batches from before lanes (router). */
  lane: 'lane',
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

/**
 * The tag of the prefix-wide registries (accounts with a queue, live workers, published account
 * settings): small, read whole by the operator's views, written now and then; one slot for all.
 */
export const REGISTRY_TAG = hashTag('registry');

/** Redis keys of hfq's own state (limits, credits, spend), under the same prefix as BullMQ's. */
export function stateKey(prefix: string, ...parts: string[]): string {
  return [prefix, 'hfq', ...parts].join(':');
}
