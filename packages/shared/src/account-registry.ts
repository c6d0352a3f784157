import type { Cluster, Redis } from 'ioredis';
import { REGISTRY_TAG, stateKey } from './queue-names.js';

/**
 * Which account queues exist under a prefix, without KEYS or SCAN: every producer records each
 * account queue it adds to, and every worker the accounts it serves, in one set. The operator's
 * read-only views (status, board) list what is in it, so a job enqueued for a mistyped account is
 * visible. The set's TTL is refreshed on every write; an account nobody wrote to for that long
 * drops out of it (its jobs are long gone by then under the default retention).
 */

/** Lifetime of the registry set, refreshed on every write. */
export const ACCOUNT_REGISTRY_TTL_SECONDS = 30 * 24 * 3600;

/** The set of account ids that have a queue (written by producers and workers). */
export function accountRegistryKey(prefix: string): string {
  return stateKey(prefix, REGISTRY_TAG, 'accounts');
}

type Writer = Pick<Redis | Cluster, 'multi'>;

/** Records that `accountId` has a queue: one `SADD` + `EXPIRE` in one round trip. */
export async function recordAccountQueue(redis: Writer, prefix: string, accountIds: string[]): Promise<void> {
  if (accountIds.length === 0) return;
  const key = accountRegistryKey(prefix);
  await redis
    .multi()
    .sadd(key, ...accountIds)
    .expire(key, ACCOUNT_REGISTRY_TTL_SECONDS)
    .exec();
}

/** Every account id recorded under the prefix, sorted. */
export async function readAccountRegistry(redis: Pick<Redis | Cluster, 'smembers'>, prefix: string) {
  return (await redis.smembers(accountRegistryKey(prefix))).sort();
}
