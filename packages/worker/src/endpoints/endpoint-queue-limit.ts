/**
 * The `max` of an account queue's coarse BullMQ limiter (job starts per window). Endpoint jobs
 * are limited by requests in flight, not by the router's rate (see docs/architecture.md,
 * "Dedicated capacity"), so the queue's limiter must not cap them at it: each endpoint slot is
 * allowed a start per 10 ms on top of the router's limit.
 */
export function queueStartLimit(
  account: { endpoints?: readonly { concurrency: number }[] | undefined },
  routerMax: number,
  durationMs: number,
): number {
  const endpointStarts = (account.endpoints ?? []).reduce(
    (sum, e) => sum + e.concurrency * Math.ceil(durationMs / 10),
    0,
  );
  return routerMax + endpointStarts;
}
