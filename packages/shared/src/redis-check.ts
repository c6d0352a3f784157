import { Redis, type RedisOptions } from 'ioredis';
import { describeTarget, whenReady } from './redis.js';
import { type Connection, isCluster, isClusterConnection, type RedisClient } from './redis-cluster.js';
import { CLUSTER_NODES_VARIABLE, describeClusterNodes } from './redis-env.js';

/**
 * The start-up check of a Redis connection: the server answers, and it is the kind of server the
 * connection expects. A cluster must report `cluster_state:ok` on every master; a standalone
 * connection must not lead to a node of a cluster (it would answer MOVED for most keys). Each
 * failure says what is wrong and what to do. See docs/redis-cluster.md, "Connecting".
 */

export class RedisTargetError extends Error {
  readonly code = 'HFQ_REDIS_TARGET';
  constructor(message: string) {
    super(message);
    this.name = 'RedisTargetError';
  }
}

const ALL_SLOTS = 16_384;

/** `cluster_state` and `cluster_slots_ok` from CLUSTER INFO text. */
function clusterInfo(text: string): { state: string; slotsOk: number } {
  const state = /cluster_state:(\w+)/.exec(text)?.[1] ?? 'unknown';
  const slotsOk = Number(/cluster_slots_ok:(\d+)/.exec(text)?.[1] ?? 0);
  return { state, slotsOk };
}

function stateOf(info: { state: string; slotsOk: number }): string {
  return `reports cluster_state:${info.state} (${info.slotsOk} of ${ALL_SLOTS} slots served)`;
}

function repairAdvice(where: string): string {
  return (
    `some slots have no reachable master. Repair the cluster (redis-cli --cluster check ${where}; ` +
    'after a lost master, wait for its replica to take over or add one) before starting hfq.'
  );
}

/**
 * Resolves once `client` is ready and its server is what the connection expects; else a
 * `RedisTargetError`. Without `timeoutMs`, a standalone Redis is awaited for as long as it takes
 * (a worker started before its Redis waits for it), and a cluster for 30 s: a cluster that is
 * reachable but not whole never gets ready, and saying why beats waiting in silence.
 */
export async function checkRedisTarget(
  client: RedisClient,
  input: Connection,
  timeoutMs?: number,
): Promise<void> {
  if (isCluster(client)) {
    try {
      await whenReady(client, timeoutMs ?? 30_000);
    } catch {
      throw new RedisTargetError(await diagnoseCluster(client, input));
    }
    for (const node of client.nodes('master')) {
      const where = `${node.options.host}:${node.options.port}`;
      const text = String(await node.cluster('INFO'));
      const info = clusterInfo(text);
      if (info.state !== 'ok') {
        throw new RedisTargetError(`Redis Cluster node ${where} ${stateOf(info)}: ${repairAdvice(where)}`);
      }
    }
    return;
  }
  if (timeoutMs !== undefined) await whenReady(client, timeoutMs);
  else await readyWithoutLimit(client);
  await checkDatabase(client);
  const info = String(await client.info('cluster').catch(() => ''));
  if (/cluster_enabled:1/.test(info)) {
    const where = `${client.options.host}:${client.options.port}`;
    throw new RedisTargetError(
      `${where} is a node of a Redis Cluster, and a connection to one node gets MOVED for keys other nodes serve: ` +
        `set ${CLUSTER_NODES_VARIABLE}=${where} (one or more nodes; the rest are discovered) instead of REDIS_URL, ` +
        'or pass an ioredis Cluster as `connection`.',
    );
  }
}

/**
 * The database the connection names exists: ioredis reports a refused SELECT (`/99` on a server
 * with 16 databases) only as an error event and goes on in database 0, so ask again and stop.
 */
async function checkDatabase(client: Redis): Promise<void> {
  const db = client.options.db ?? 0;
  if (db === 0) return;
  try {
    await client.select(db);
  } catch (err) {
    const databases = await client
      .config('GET', 'databases')
      .then((reply) => Number((reply as string[])[1]))
      .catch(() => Number.NaN);
    const has = Number.isFinite(databases) ? ` (it has ${databases}: 0 to ${databases - 1})` : '';
    throw new RedisTargetError(
      `Redis at ${describeTarget(client)} has no database ${db}${has}: ${(err as Error).message.split('\n')[0]}. ` +
        'Use a database number the server has in REDIS_URL (redis://host:port/<db>).',
    );
  }
}

/** Connection errors are retried by the client: only its end stops the wait. */
function readyWithoutLimit(client: Redis): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onReady = () => {
      client.off('end', onEnd);
      resolve();
    };
    const onEnd = () => {
      client.off('ready', onReady);
      reject(new Error('Redis connection closed'));
    };
    client.once('ready', onReady);
    client.once('end', onEnd);
  });
}

/** Why a cluster client did not become ready, from its nodes one by one. */
async function diagnoseCluster(client: RedisClient, input: Connection): Promise<string> {
  const spec = isClusterConnection(input) ? input : undefined;
  const nodes =
    spec?.clusterNodes ??
    (isCluster(client)
      ? client
          .nodes('all')
          .map((n) => ({ host: n.options.host ?? '127.0.0.1', port: n.options.port ?? 6379 }))
      : []);
  const named = spec ? describeClusterNodes(spec) : nodes.map((n) => `${n.host}:${n.port}`).join(',');
  const nodeOptions: RedisOptions = isCluster(client)
    ? { ...client.options.redisOptions }
    : { ...spec?.redisOptions };
  const findings: string[] = [];
  let failing: string | undefined;
  for (const node of nodes) {
    const finding = await probeNode(node, nodeOptions);
    if (finding.startsWith('reports cluster_state:') && !finding.includes(':ok '))
      failing ??= `${node.host}:${node.port}`;
    findings.push(`${node.host}:${node.port} ${finding}`);
  }
  const detail =
    (findings.length > 0 ? findings.join('; ') : 'no node known to probe') +
    (failing ? `: ${repairAdvice(failing)}` : '');
  return `Redis Cluster (${named || 'no nodes'}) not ready: ${detail}`;
}

async function probeNode(node: { host: string; port: number }, options: RedisOptions): Promise<string> {
  const probe = new Redis({
    ...options,
    host: node.host,
    port: node.port,
    connectionName: undefined,
    lazyConnect: true,
    connectTimeout: 2_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: true,
  });
  probe.on('error', () => {});
  try {
    await probe.connect();
    const text = String(await probe.cluster('INFO'));
    const info = clusterInfo(text);
    return stateOf(info);
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    if (/cluster support disabled/i.test(message)) {
      return 'is a standalone Redis, not a cluster node: use REDIS_URL for it instead';
    }
    if (/NOAUTH|WRONGPASS|invalid password|AUTH/i.test(message)) {
      return 'refused the credentials: check the user and password of the cluster nodes';
    }
    return `is unreachable (${message.replace(/\/\/[^@\s]*@/g, '//***@').slice(0, 200)})`;
  } finally {
    probe.disconnect();
  }
}
