import type { RedisClient } from './redis-cluster.js';

/** Redis memory as `INFO memory` reports it. `maxBytes` 0: no maxmemory set (Redis grows until the host is full). */
export interface RedisMemory {
  usedBytes: number;
  maxBytes: number;
  policy: string;
}

export async function readRedisMemory(redis: RedisClient): Promise<RedisMemory> {
  const info = await redis.info('memory');
  const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
  return {
    usedBytes: Number(field('used_memory') ?? 0),
    maxBytes: Number(field('maxmemory') ?? 0),
    policy: field('maxmemory_policy') ?? 'unknown',
  };
}

/** Redis refused a write because it is full (`maxmemory` reached with `noeviction`). */
export function isRedisOutOfMemory(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /\bOOM\b|used memory > 'maxmemory'|EXECABORT/.test(message);
}

export function describeMemory(memory: RedisMemory): string {
  const mb = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MB`;
  return memory.maxBytes > 0
    ? `${mb(memory.usedBytes)} used of maxmemory ${mb(memory.maxBytes)} (${Math.round(
        (100 * memory.usedBytes) / memory.maxBytes,
      )}%, policy ${memory.policy})`
    : `${mb(memory.usedBytes)} used, no maxmemory set`;
}
