import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config-error.js';
import { loadConnectionConfig } from '../src/env-config.js';
import { isClusterTarget } from '../src/redis-cluster.js';
import { describeClusterNodes, parseClusterNodes } from '../src/redis-env.js';

describe('REDIS_CLUSTER_NODES', () => {
  it('reads host:port entries', () => {
    expect(parseClusterNodes('10.0.0.1:7000, redis-1.internal:7001,[::1]:7002')).toEqual({
      clusterNodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'redis-1.internal', port: 7001 },
        { host: '::1', port: 7002 },
      ],
    });
  });

  it('takes TLS and credentials, given once, for every node', () => {
    const spec = parseClusterNodes('rediss://app:s%40cret@node-a:6380,node-b:6380');
    expect(spec.clusterNodes).toEqual([
      { host: 'node-a', port: 6380 },
      { host: 'node-b', port: 6380 },
    ]);
    expect(spec.redisOptions).toEqual({ username: 'app', password: 's@cret', tls: {} });
    expect(describeClusterNodes(spec)).toBe('rediss://node-a:6380,rediss://node-b:6380');
  });

  it('refuses bad entries, naming the entry but never its password', () => {
    expect(() => parseClusterNodes('node-a')).toThrow(/host:port/);
    expect(() => parseClusterNodes('node-a:99999')).toThrow(/port from 1 to 65535/);
    expect(() => parseClusterNodes('redis://node-a:7000/2')).toThrow(/no database number/);
    expect(() => parseClusterNodes(' , ')).toThrow(/host:port entries/);
    expect(() => parseClusterNodes('redis://a:7000,rediss://b:7000')).toThrow(/TLS or none/);
    let message = '';
    try {
      parseClusterNodes('redis://app:topsecret@node-a:70000');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/app:\*\*\*@node-a/);
    expect(message).not.toContain('topsecret');
  });

  it('is the connection when set, and may not be set together with REDIS_URL', () => {
    const config = loadConnectionConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1:7001' });
    expect(isClusterTarget(config.connection)).toBe(true);
    expect(loadConnectionConfig({ REDIS_URL: 'redis://r:6379' }).connection).toBe('redis://r:6379');
    expect(() =>
      loadConnectionConfig({ REDIS_URL: 'redis://r:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' }),
    ).toThrow(ConfigError);
    expect(() => loadConnectionConfig({ REDIS_CLUSTER_NODES: 'nope' })).toThrow(/^REDIS_CLUSTER_NODES: /);
  });
});
