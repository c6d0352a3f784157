/**
 * hfq's scripts run by SHA (redis-script.ts) on a Redis of the test's own: it flushes the script
 * cache, as a restart or a failover to a replica that never saw the script would.
 */
import { RedisScript } from '@hfq/shared/internal';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownRedis } from '../../../test/support/faults.js';
import type { SpawnedRedis } from '../../cli/src/local-redis.js';

const INCR_BY = new RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])");

let server: SpawnedRedis;
let redis: Redis;
let monitor: Redis;
const seen: string[] = [];
/** Resolves the PING marker's wait when MONITOR shows it. */
const markers = new Map<string, () => void>();

beforeAll(async () => {
  server = await ownRedis();
  redis = new Redis(server.url);
  monitor = await new Redis(server.url).monitor();
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[0] === 'eval' || args[0] === 'evalsha') seen.push(`${args[0]} ${args[3] ?? ''}`);
    if (args[0] === 'ping' && args[1]) markers.get(args[1])?.();
  });
});

afterAll(async () => {
  redis.disconnect();
  monitor.disconnect();
  await server.stop();
});

let marks = 0;
/** The script calls MONITOR saw since the last call: a PING sent after them is seen after them. */
async function monitored(): Promise<string[]> {
  const marker = `mark-${++marks}`;
  const shown = new Promise<void>((resolve) => markers.set(marker, resolve));
  await redis.ping(marker);
  await shown;
  markers.delete(marker);
  return seen.splice(0);
}

describe('a script run by SHA', () => {
  it('is sent whole once per client, then by SHA, and whole again after the server lost it', async () => {
    expect(await INCR_BY.run(redis, ['n'], [2])).toBe(2);
    expect(await INCR_BY.run(redis, ['n'], [3])).toBe(5);
    expect(await monitored()).toEqual(['eval n', 'evalsha n']);

    await redis.script('FLUSH');
    expect(await INCR_BY.run(redis, ['n'], [4])).toBe(9);
    // The SHA is refused (NOSCRIPT) and the script goes whole; the next call is by SHA again.
    expect(await INCR_BY.run(redis, ['n'], [1])).toBe(10);
    expect(await monitored()).toEqual(['evalsha n', 'eval n', 'evalsha n']);
  });

  it('passes on a script error other than NOSCRIPT, and does not run the script twice', async () => {
    const failing = new RedisScript("redis.call('INCR', KEYS[1]); return redis.error_reply('ERR boom')");
    await expect(failing.run(redis, ['f'])).rejects.toThrow('boom');
    await expect(failing.run(redis, ['f'])).rejects.toThrow('boom');
    expect(await redis.get('f')).toBe('2');
  });
});
