import { randomBytes } from 'node:crypto';
import { hashTag, type RedisClient, refreshLease, releaseLease, stateKey } from '@hfq/shared/internal';

/**
 * The right to add a batch's items: one producer at a time, so a retried batch id never adds the
 * same items twice. A lease lives `LEASE_TTL_MS` unless refreshed; a producer that dies loses it
 * within that time and a retry takes over (see batch.ts, `resume`).
 */
export const LEASE_TTL_MS = 10_000;

export function batchLeaseKey(prefix: string, batchId: string): string {
  return stateKey(prefix, 'batch-feeder', hashTag(batchId));
}

export interface BatchLease {
  refresh(): Promise<boolean>;
  release(): Promise<void>;
}

/** Take the lease if nobody holds it; `undefined` if another producer does. */
export async function takeLease(
  redis: RedisClient,
  prefix: string,
  batchId: string,
): Promise<BatchLease | undefined> {
  const key = batchLeaseKey(prefix, batchId);
  const token = randomBytes(8).toString('hex');
  if ((await redis.set(key, token, 'PX', LEASE_TTL_MS, 'NX')) !== 'OK') return undefined;
  return {
    // Refresh and release only a lease this producer still holds.
    refresh: () => refreshLease(redis, key, token, LEASE_TTL_MS),
    release: async () => {
      await releaseLease(redis, key, token);
    },
  };
}

/** Take the lease, waiting up to `waitMs` for a holder that stopped refreshing it (a crashed producer). */
export async function waitForLease(
  redis: RedisClient,
  prefix: string,
  batchId: string,
  waitMs = LEASE_TTL_MS + 2_000,
): Promise<BatchLease | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const lease = await takeLease(redis, prefix, batchId);
    if (lease || Date.now() >= deadline) return lease;
    const left = await redis.pttl(batchLeaseKey(prefix, batchId));
    await new Promise((r) =>
      setTimeout(r, Math.max(50, Math.min(left > 0 ? left : 100, deadline - Date.now()))),
    );
  }
}
