import type { RedisOptions } from 'ioredis';
import type { ClusterConnection } from './redis-cluster.js';

/**
 * `REDIS_CLUSTER_NODES` → the nodes of a Redis Cluster. Each entry is `host:port` or a URL
 * (`redis://[user:password@]host:port`, `rediss://…` for TLS); credentials and TLS, given once
 * on any entry, apply to every node, as `REDIS_URL`'s do to its one server. Errors name the
 * variable and the entry, never a password.
 */

export const CLUSTER_NODES_VARIABLE = 'REDIS_CLUSTER_NODES';

/** A bad `REDIS_CLUSTER_NODES`; `env-config.ts` turns it into its `ConfigError`. */
export class ClusterNodesError extends Error {}

/** An entry as it may be shown: any password replaced. */
function shownEntry(entry: string): string {
  return entry.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

const EXPECTED = 'expected host:port or redis[s]://[user:password@]host:port, with a port from 1 to 65535';

export function parseClusterNodes(raw: string): ClusterConnection {
  const entries = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (entries.length === 0) throw new ClusterNodesError('expected host:port entries separated by commas');
  const nodes: { host: string; port: number }[] = [];
  let tls: boolean | undefined;
  let username: string | undefined;
  let password: string | undefined;
  for (const entry of entries) {
    const isUrl = /^rediss?:\/\//.test(entry);
    let url: URL;
    try {
      url = new URL(isUrl ? entry : `redis://${entry}`);
    } catch {
      throw new ClusterNodesError(`got ${JSON.stringify(shownEntry(entry))}, ${EXPECTED}`);
    }
    const port = Number(url.port);
    if (!url.hostname || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new ClusterNodesError(`got ${JSON.stringify(shownEntry(entry))}, ${EXPECTED}`);
    }
    if (url.pathname !== '' && url.pathname !== '/') {
      throw new ClusterNodesError(
        `got ${JSON.stringify(shownEntry(entry))}: a cluster has no database number, remove "${url.pathname}"`,
      );
    }
    if (isUrl) {
      const entryTls = url.protocol === 'rediss:';
      if (tls !== undefined && tls !== entryTls) {
        throw new ClusterNodesError(
          'mixes redis:// and rediss:// entries: every node of a cluster speaks TLS or none does',
        );
      }
      tls = entryTls;
      if (url.username) username = decodeURIComponent(url.username);
      if (url.password) password = decodeURIComponent(url.password);
    }
    // URL keeps IPv6 hosts in brackets; ioredis wants the bare address.
    nodes.push({ host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port });
  }
  const redisOptions: RedisOptions = {};
  if (username) redisOptions.username = username;
  if (password) redisOptions.password = password;
  if (tls) redisOptions.tls = {};
  return Object.keys(redisOptions).length > 0
    ? { clusterNodes: nodes, redisOptions }
    : { clusterNodes: nodes };
}

/** `host:port,…` of a cluster connection, for logs and errors (no credentials). */
export function describeClusterNodes(spec: ClusterConnection): string {
  const scheme = spec.redisOptions?.tls ? 'rediss://' : '';
  return spec.clusterNodes
    .map((n) => `${scheme}${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`)
    .join(',');
}

/**
 * The cluster `REDIS_CLUSTER_NODES` names, or undefined when it is unset. Setting it together
 * with `REDIS_URL` is an error: one of the two would be ignored without a word.
 */
export function readClusterConnection(
  env: Readonly<Record<string, string | undefined>>,
  configError: (variable: string, message: string) => Error,
): ClusterConnection | undefined {
  const raw = env[CLUSTER_NODES_VARIABLE];
  if (raw === undefined || raw.trim() === '') return undefined;
  if (env.REDIS_URL) {
    throw configError(
      CLUSTER_NODES_VARIABLE,
      'set either REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (a Redis Cluster), not both',
    );
  }
  try {
    return parseClusterNodes(raw);
  } catch (err) {
    if (err instanceof ClusterNodesError) throw configError(CLUSTER_NODES_VARIABLE, err.message);
    throw err;
  }
}
