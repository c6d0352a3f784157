import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, expect, inject, onTestFinished } from 'vitest';

/** The run's Redis (see global-setup.ts). */
export function redisUrl(): string {
  return inject('redisUrl');
}

/** A BullMQ/hfq key prefix of the test's own, so tests never see each other's keys. */
export function testPrefix(label = 't'): string {
  return `${label}${randomBytes(4).toString('hex')}`;
}

/** A connection to the run's Redis, closed when the current test finishes. */
export function testRedis(): Redis {
  const redis = new Redis(redisUrl());
  onTestFinished(async () => {
    await redis.quit();
  });
  return redis;
}

/** A plain connection for assertions; close it in the test. */
export function adminRedis(url = redisUrl()): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: false });
}

/**
 * Fails the test if any Redis client still connected is named under the prefix: a worker, queue
 * or connection the test left open. BullMQ and hfq name their connections `<prefix>:…`.
 */
export async function expectNoClientsLeft(admin: Redis, prefix: string, waitMs = 2_000): Promise<void> {
  const deadline = Date.now() + waitMs;
  let left: string[] = [];
  for (;;) {
    const list = (await admin.client('LIST')) as string;
    left = list
      .split('\n')
      .map((line) => /(?:^| )name=(\S*)/.exec(line)?.[1] ?? '')
      .filter((name) => name.startsWith(`${prefix}:`));
    if (left.length === 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(left, `connections left open under prefix ${prefix}`).toEqual([]);
}

/** Keys under a prefix: for secrets scans and leak checks (SCAN, never KEYS). */
export async function keysUnder(admin: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

/**
 * Connections and key prefixes for a file's tests, cleaned after each test: the keys under every
 * prefix it took are unlinked (through its first connection) and its connections closed.
 */
export function redisForEachTest(label = 't'): { connect: () => Redis; newPrefix: () => string } {
  const connections: Redis[] = [];
  const prefixes: string[] = [];
  afterEach(async () => {
    const [admin] = connections;
    if (admin) {
      for (const prefix of prefixes.splice(0)) {
        const keys = await keysUnder(admin, prefix);
        if (keys.length > 0) await admin.unlink(...keys);
      }
    }
    await Promise.all(connections.splice(0).map((c) => c.quit()));
  });
  return {
    connect: () => {
      const redis = new Redis(redisUrl());
      connections.push(redis);
      return redis;
    },
    newPrefix: () => {
      const prefix = testPrefix(label);
      prefixes.push(prefix);
      return prefix;
    },
  };
}

/**
 * Every command Redis runs from now on, as "NAME arg …" lines (MONITOR), until `stop` (or the
 * test's end). Resolves once the connection is in monitoring mode. (ioredis's own `monitor()`
 * can reject at its start under load: a line that arrives in the same read as MONITOR's OK reaches
 * the command queue before the status changes, "Command queue state error". Such a line is a
 * command run before the monitor began, so it is dropped here.)
 */
export async function monitorCommands(): Promise<{ seen: string[]; stop: () => void }> {
  const monitor = new Redis(redisUrl(), { monitor: true });
  const seen: string[] = [];
  const stop = () => monitor.disconnect();
  onTestFinished(stop);
  monitor.on('monitor', (_time: string, args: string[]) => seen.push(args.join(' ')));
  await new Promise<void>((resolve, reject) => {
    monitor.once('monitoring', () => resolve());
    monitor.on('error', (error: Error) => {
      if (!error.message.startsWith('Command queue state error')) reject(error);
    });
  });
  return { seen, stop };
}
