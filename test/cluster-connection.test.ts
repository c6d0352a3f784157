import { createProducer } from '@hfq/producer';
import { type AccountConfigInput, createLogger, RedisTargetError } from '@hfq/shared';
import { type Sim, startSim } from '@hfq/sim';
import { createAdmin, createWorker } from '@hfq/worker';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpawnedCluster } from './support/cluster.js';
import { embedJob } from './support/jobs.js';
import { HfqProcess } from './support/processes.js';
import { testPrefix } from './support/redis.js';
import { upstreamOf } from './support/stack.js';
import { waitFor } from './support/wait.js';

/**
 * Connecting to a Redis Cluster: an ioredis `Cluster` passed as `connection` stays a cluster
 * client (duplicated, never spread into options, left open for its owner), cluster nodes given
 * as data or as REDIS_CLUSTER_NODES work the same, and a connection that cannot work on this
 * cluster is refused at start with what to do. The prefix carries one hash tag here (`{…}`), so
 * these tests need nothing of the per-account key layout (see docs/redis-cluster.md).
 */

const HF = 'hf_test_cluster_conn_0123456789abcdef';
const logger = createLogger({ level: 'silent' });
const account: AccountConfigInput = {
  id: 'acme',
  tier: 'pro',
  hfToken: HF,
  limit: { max: 200, durationMs: 1000 },
};

let cluster: SpawnedCluster;
let sim: Sim;

beforeAll(async () => {
  cluster = await SpawnedCluster.start();
  sim = await startSim({ latency: { baseMs: 0, jitterMs: 0, minMs: 2, maxMs: 10, perItemMs: 0 } });
  sim.setToken(HF, { label: 'hf' });
});

afterAll(async () => {
  await sim?.close();
  await cluster?.stop();
});

/** Client names under `prefix` still connected to any node of the cluster. */
async function clientsLeft(prefix: string): Promise<string[]> {
  const lists = await cluster.eachNode(async (redis) => String(await redis.client('LIST')));
  return lists
    .flatMap((list) => list.split('\n'))
    .map((line) => /(?:^| )name=(\S*)/.exec(line)?.[1] ?? '')
    .filter((name) => name.startsWith(`${prefix}:`));
}

describe('Redis Cluster connections', () => {
  it('runs jobs with a Cluster instance and with cluster nodes, and leaves the caller’s Cluster open', async () => {
    const prefix = `{${testPrefix('cc')}}`;
    const mine: Cluster = cluster.client();
    try {
      const worker = await createWorker({
        connection: mine,
        prefix,
        accounts: [account],
        upstream: upstreamOf(sim),
        concurrency: 4,
        logger,
      });
      const producer = createProducer({
        connection: { clusterNodes: [{ host: '127.0.0.1', port: cluster.ports[0] as number }] },
        prefix,
      });
      try {
        const handles = await producer.enqueueMany(Array.from({ length: 20 }, (_, i) => embedJob(i)));
        const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
        expect(results).toHaveLength(20);
        for (const r of results) expect(r.route).toBe('hf-router');
        // The jobs are in the cluster (a client spread into options would have used localhost:6379).
        expect(await mine.zcard(`${prefix}:account-{acme}:completed`)).toBe(20);
      } finally {
        await producer.close();
        await worker.close();
      }
      // The caller's client is still the caller's: open, and a cluster client.
      expect(mine.status).toBe('ready');
      expect(await mine.ping()).toBe('PONG');
      expect(mine.isCluster).toBe(true);
      // (A closed client's connection leaves the server's list when the server has read its QUIT:
      // on a loaded machine that took longer than 5 s once.)
      await waitFor(async () => (await clientsLeft(prefix)).length === 0, 'hfq connections to close', 15_000);
    } finally {
      mine.disconnect();
    }
  });

  it('refuses a Redis URL naming one node of a cluster, saying to use REDIS_CLUSTER_NODES', async () => {
    const prefix = `{${testPrefix('cu')}}`;
    const url = `redis://127.0.0.1:${cluster.ports[0]}`;
    const producer = createProducer({ connection: url, prefix });
    try {
      const refused = producer.enqueue(embedJob(0));
      await expect(refused).rejects.toThrow(RedisTargetError);
      await expect(refused).rejects.toThrow(/REDIS_CLUSTER_NODES=127\.0\.0\.1:\d+/);
    } finally {
      await producer.close();
    }
    await expect(
      createWorker({ connection: url, prefix, accounts: [account], upstream: upstreamOf(sim), logger }),
    ).rejects.toThrow(/node of a Redis Cluster/);
  });

  it('hfq status reads the cluster named by REDIS_CLUSTER_NODES', async () => {
    const prefix = `{${testPrefix('cs')}}`;
    const env = {
      REDIS_CLUSTER_NODES: cluster.nodesEnv,
      HFQ_PREFIX: prefix,
      HFQ_ACCOUNT: 'acme',
      HF_TOKEN: HF,
      HFQ_TIER: 'pro',
    };
    const proc = HfqProcess.start(['status', '--json'], env);
    const { code } = await proc.exited;
    expect(code, proc.lines.join('\n')).toBe(0);
    const { accounts } = JSON.parse(proc.lines.join('\n')) as {
      accounts: { account: string; credits: { state: string } }[];
    };
    expect(accounts.map((s) => [s.account, s.credits.state])).toEqual([['acme', 'ok']]);
  });
});

describe('a cluster that is not whole', () => {
  let broken: SpawnedCluster | undefined;
  afterAll(async () => {
    await broken?.stop();
  });

  it('is named at start (cluster_state:fail), not waited on in silence', async () => {
    broken = await SpawnedCluster.start({ nodeTimeoutMs: 1_000 });
    const [victim, survivor] = broken.ports as [number, number];
    await broken.kill(victim);
    // With no replica to take over, the survivors mark the cluster down once the timeout passes.
    await waitFor(
      async () => {
        const probe = broken?.node(survivor);
        try {
          return /cluster_state:fail/.test(String(await probe?.call('CLUSTER', 'INFO')));
        } finally {
          probe?.disconnect();
        }
      },
      'cluster_state:fail on a surviving node',
      20_000,
      100,
    );
    const admin = createAdmin({
      connection: { clusterNodes: [{ host: '127.0.0.1', port: survivor }] },
      prefix: `{${testPrefix('cf')}}`,
      accounts: [account],
    });
    try {
      const status = admin.status();
      await expect(status).rejects.toThrow(RedisTargetError);
      await expect(status).rejects.toThrow(/cluster_state:fail/);
    } finally {
      await admin.close();
    }
  });
});
