import { Cluster, type ClusterOptions, type Redis, type RedisOptions } from 'ioredis';
import {
  type ConnectionInput,
  createProducerConnection,
  createWorkerConnection,
  redisOptions,
} from './redis.js';

/**
 * Connections to a standalone Redis or to a Redis Cluster (Valkey cluster), made per role from
 * whatever the caller gave as `connection`. A client passed in (ioredis `Redis` or `Cluster`) is
 * duplicated with the role's options, never spread into options: spreading a `Cluster` silently
 * gives a standalone client to localhost. See docs/redis-cluster.md, "Connecting".
 */

/** A Redis Cluster named by some of its nodes (the rest are discovered), as `REDIS_CLUSTER_NODES` gives it. */
export interface ClusterConnection {
  clusterNodes: { host: string; port: number }[];
  /** Options of every node connection: `username`, `password`, `tls`. */
  redisOptions?: RedisOptions;
}

/**
 * What hfq accepts as `connection`: a Redis URL, ioredis options, an ioredis `Redis` or
 * `Cluster` instance (duplicated per role; the caller keeps and closes its own), or the nodes of
 * a cluster.
 */
export type Connection = ConnectionInput | Redis | Cluster | ClusterConnection;

/** A connection of either kind. Commands with keys of one hash tag work on both. */
export type RedisClient = Redis | Cluster;

/** Workers block and retry for ever; producers, the board and admin fail fast. */
export type ConnectionRole = 'worker' | 'producer';

export function isClusterConnection(input: Connection): input is ClusterConnection {
  return typeof input === 'object' && input !== null && 'clusterNodes' in input;
}

/** An ioredis client (checked by shape: the caller's ioredis may be another copy than hfq's). */
export function isRedisClient(input: unknown): input is RedisClient {
  return (
    typeof input === 'object' &&
    input !== null &&
    typeof (input as { duplicate?: unknown }).duplicate === 'function' &&
    typeof (input as { defineCommand?: unknown }).defineCommand === 'function'
  );
}

export function isCluster(client: unknown): client is Cluster {
  return isRedisClient(client) && (client as { isCluster?: boolean }).isCluster === true;
}

/** Whether `connection` leads to a Redis Cluster. */
export function isClusterTarget(input: Connection): boolean {
  return isClusterConnection(input) || isCluster(input);
}

/** Reconnect with capped backoff: 50 ms, 100 ms, … up to 2 s, for ever. */
function retryStrategy(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 6), 2_000);
}

/** Per-node options of each role (the same as for a standalone Redis, see redis.ts). */
function nodeOptions(role: ConnectionRole, name: string | undefined): RedisOptions {
  const base: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : { maxRetriesPerRequest: 1, connectTimeout: 2_000 };
  return name ? { ...base, connectionName: name } : base;
}

/**
 * Cluster-wide options. Both roles queue commands while the cluster client (re)discovers its
 * slots: BullMQ treats a cluster client that is still checking its slots as ready and sends its
 * first commands at once, which a client without an offline queue fails. A producer still fails
 * fast: it waits for the client to be ready, for a bounded time, before each operation, and its
 * node connections give up a command after one retry.
 */
function clusterOptions(_role: ConnectionRole): ClusterOptions {
  return {
    enableOfflineQueue: true,
    clusterRetryStrategy: retryStrategy,
    // CLUSTER SLOTS on a busy node can take more than the default second; a timeout here fails
    // the client's first connection outright.
    slotsRefreshTimeout: 5_000,
    // A failover takes the cluster's node timeout plus an election: keep redirected commands
    // retrying through it instead of failing them after 16 quick redirections.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 200,
    maxRedirections: 64,
  };
}

function newCluster(spec: ClusterConnection, role: ConnectionRole, name?: string): Cluster {
  const tls = spec.redisOptions?.tls !== undefined;
  return new Cluster(spec.clusterNodes, {
    ...clusterOptions(role),
    lazyConnect: false,
    // Managed clusters with TLS announce node addresses that must not be re-resolved (the
    // certificate names the host): connect to each address as announced.
    ...(tls
      ? {
          dnsLookup: (address: string, callback: (err: null, address: string) => void) =>
            callback(null, address),
        }
      : {}),
    redisOptions: { ...spec.redisOptions, ...nodeOptions(role, name) },
  });
}

function duplicateCluster(cluster: Cluster, role: ConnectionRole, name?: string): Cluster {
  return cluster.duplicate(undefined, {
    ...clusterOptions(role),
    lazyConnect: false,
    redisOptions: { ...cluster.options.redisOptions, ...nodeOptions(role, name) },
  });
}

/**
 * A connection of hfq's own for one role, from any `connection` hfq accepts. The caller closes
 * it (`quit()`); a client passed in stays the caller's. `pipelined`: ioredis's auto-pipelining,
 * the commands of one tick in one socket write (for a connection that never blocks; bench:load's
 * profile put the worker's many small writes, one per permit, first among hfq's costs). A
 * standalone Redis only: on a cluster, ioredis 5.9 fails an auto-pipeline whose commands' keys
 * fall in slots of more than one node ("All keys in the pipeline should belong to the same slots
 * allocation group", cluster-e2e.test.ts), so a cluster connection is never pipelined.
 */
export function connectionFor(
  input: Connection,
  role: ConnectionRole,
  name?: string,
  pipelined = false,
): RedisClient {
  if (isClusterConnection(input)) return newCluster(input, role, name);
  if (isCluster(input)) return duplicateCluster(input, role, name);
  if (isRedisClient(input)) {
    return input.duplicate({
      ...nodeOptions(role, name),
      ...(role === 'worker' ? { retryStrategy } : { enableOfflineQueue: false, retryStrategy }),
      enableAutoPipelining: pipelined,
    });
  }
  return role === 'worker'
    ? createWorkerConnection(input, name, pipelined)
    : createProducerConnection(input, name);
}

/**
 * What to give BullMQ objects that open their own blocking connections (Worker, QueueEvents):
 * plain options for a URL or options; for a cluster or a client passed in, a client with the
 * worker role's options that BullMQ duplicates (BullMQ connects a lazy duplicate with one attempt
 * only, so the template is a connected client). `close()` when those objects are closed.
 */
export interface BlockingSource {
  readonly connection: RedisOptions | RedisClient;
  close(): void;
}

export function blockingSourceFor(input: Connection, name?: string): BlockingSource {
  if (isClusterConnection(input) || isRedisClient(input)) {
    const template = isClusterConnection(input)
      ? newCluster(input, 'worker', name)
      : isCluster(input)
        ? duplicateCluster(input, 'worker', name)
        : input.duplicate({ ...nodeOptions('worker', name), retryStrategy });
    template.on('error', () => {});
    return { connection: template, close: () => template.disconnect() };
  }
  const options: RedisOptions = { ...redisOptions(input), maxRetriesPerRequest: null };
  if (name) options.connectionName = name;
  return { connection: options, close: () => {} };
}

/**
 * The connection for one BullMQ blocking object (worker, queue events), from a source: options
 * get `maxRetriesPerRequest: null` and the name; a client is handed over as it is (BullMQ
 * duplicates it and owns the duplicate).
 */
export function blockingConnection(
  source: RedisOptions | RedisClient,
  name?: string,
): RedisOptions | RedisClient {
  if (isRedisClient(source)) return source;
  return { ...source, maxRetriesPerRequest: null, ...(name ? { connectionName: name } : {}) };
}
