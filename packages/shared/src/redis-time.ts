import type { RedisClient } from './redis-cluster.js';

/**
 * Redis's clock, in ms: for bookkeeping that several workers write and compare (an endpoint's
 * lifecycle), so a worker whose clock is off does not skew what the others read (see
 * docs/architecture.md, 'Redis time'). Deadlines a script compares with TIME are not made here:
 * they are passed to the script as durations.
 */
export async function redisTimeMs(redis: Pick<RedisClient, 'time'>): Promise<number> {
  const [seconds, micros] = await redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}
