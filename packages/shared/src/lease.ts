import { randomUUID } from 'node:crypto';
import type { RedisClient } from './redis-cluster.js';
import { luaScript } from './redis-script.js';

const RELEASE = luaScript('release-lease');
const REFRESH = luaScript('refresh-lease');

/** How often a waiting caller asks for a lease another process holds. */
const LEASE_RETRY_MS = 10;

/**
 * Run `fn` while holding a short Redis lease (`SET NX PX`), so two processes never interleave
 * the steps of one operation that spans several Redis calls (hold a queue: hold key + pause).
 * The lease expires by itself if its holder dies; `waitMs` bounds the wait for it.
 */
export async function withLease<T>(
  redis: RedisClient,
  key: string,
  fn: () => Promise<T>,
  options: { leaseMs?: number; waitMs?: number } = {},
): Promise<T> {
  const leaseMs = options.leaseMs ?? 10_000;
  const deadline = Date.now() + (options.waitMs ?? 30_000);
  const token = randomUUID();
  while ((await redis.set(key, token, 'PX', leaseMs, 'NX')) !== 'OK') {
    if (Date.now() > deadline) throw new Error(`lease ${key} still held by another process`);
    await new Promise((r) => setTimeout(r, LEASE_RETRY_MS));
  }
  try {
    return await fn();
  } finally {
    await releaseLease(redis, key, token).catch(() => false);
  }
}

/** Delete a lease only while `token` still holds it; false when it no longer did. */
export async function releaseLease(redis: RedisClient, key: string, token: string): Promise<boolean> {
  return (await RELEASE.run<number>(redis, [key], [token])) === 1;
}

/** Extend a lease to `ttlMs` only while `token` still holds it; false when it no longer did. */
export async function refreshLease(
  redis: RedisClient,
  key: string,
  token: string,
  ttlMs: number,
): Promise<boolean> {
  return (await REFRESH.run<number>(redis, [key], [token, ttlMs])) === 1;
}
