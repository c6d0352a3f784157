import { type Cluster, Redis, type RedisOptions } from 'ioredis';
import { ConfigError } from './config-error.js';
import { maskUrlCredentials } from './secrets.js';

/**
 * Redis connections. Workers and queue events block, so they retry forever
 * (`maxRetriesPerRequest: null`, required by BullMQ); producers fail fast so a caller
 * learns that Redis is down instead of hanging.
 */

export type ConnectionInput = string | RedisOptions;

function toOptions(input: ConnectionInput): RedisOptions {
  if (typeof input !== 'string') return { ...input };
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    // Named without its user-info: a Redis URL may carry the password.
    throw new Error(`not a Redis URL: ${JSON.stringify(maskUrlCredentials(input))}`);
  }
  const options: RedisOptions = {
    host: url.hostname,
    port: url.port ? Number(url.port) : 6379,
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
  };
  if (url.username) options.username = decodeURIComponent(url.username);
  if (url.password) options.password = decodeURIComponent(url.password);
  if (url.protocol === 'rediss:') options.tls = {};
  return options;
}

/** Reconnect with capped backoff: 50 ms, 100 ms, … up to 2 s, for ever. */
function retryStrategy(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 6), 2_000);
}

/**
 * A connection for BullMQ workers, queue events and hfq's own worker-side state; `pipelined`:
 * ioredis's auto-pipelining (see `connectionFor`).
 */
export function createWorkerConnection(input: ConnectionInput, name?: string, pipelined = false): Redis {
  return new Redis({
    ...toOptions(input),
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy,
    enableAutoPipelining: pipelined,
    ...(name ? { connectionName: name } : {}),
  });
}

/** A connection for producers: commands fail within about a second when Redis is unreachable. */
export function createProducerConnection(input: ConnectionInput, name?: string): Redis {
  return new Redis({
    ...toOptions(input),
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 2_000,
    retryStrategy,
    ...(name ? { connectionName: name } : {}),
  });
}

/** Plain connection options for BullMQ objects that make their own connections. */
export function redisOptions(input: ConnectionInput): RedisOptions {
  return toOptions(input);
}

/** Resolves once the connection is ready (needed before commands when the offline queue is off). */
export async function whenReady(redis: Redis | Cluster, timeoutMs = 5_000): Promise<void> {
  if (redis.status === 'ready') return;
  if (redis.status === 'end') throw new Error('Redis connection closed');
  let lastError: string | undefined;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      // Which server, and why: "connect ECONNREFUSED 127.0.0.1:6390", "getaddrinfo ENOTFOUND redis".
      const cause = lastError ? `: ${lastError}` : ` (status ${redis.status})`;
      reject(new Error(`Redis at ${describeTarget(redis)} not reachable within ${timeoutMs} ms${cause}`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onEnd = () => {
      cleanup();
      reject(new Error('Redis connection closed'));
    };
    // A refused password is not an unreachable server: say so at once instead of timing out.
    const onError = (err: Error) => {
      lastError = maskUrlCredentials(err.message.split('\n')[0] ?? '');
      if (!/^(WRONGPASS|NOAUTH|NOPERM)|invalid password/i.test(err.message)) return;
      cleanup();
      reject(new ConfigError('REDIS_URL', `Redis refused its credentials: ${err.message.split('\n')[0]}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('end', onEnd);
      redis.off('error', onError);
    };
    redis.on('ready', onReady);
    redis.on('end', onEnd);
    redis.on('error', onError);
  });
}

/** `host:port` of a connection (its first nodes for a cluster), for errors: never credentials. */
export function describeTarget(redis: Redis | Cluster): string {
  if ('startupNodes' in redis) {
    const nodes = (
      redis as unknown as { startupNodes: ({ host?: string; port?: number } | string | number)[] }
    ).startupNodes;
    return nodes
      .slice(0, 3)
      .map((n) => (typeof n === 'object' ? `${n.host ?? '127.0.0.1'}:${n.port ?? 6379}` : String(n)))
      .join(',');
  }
  const { host, port, path } = (redis as Redis).options;
  return path ? path : `${host ?? '127.0.0.1'}:${port ?? 6379}`;
}
