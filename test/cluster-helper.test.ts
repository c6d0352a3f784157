import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { type ClusterServer, clusterServerAvailable, SpawnedCluster } from './support/cluster.js';

/**
 * The cluster test helper itself: a real cluster, slots spread over the masters, cross-slot
 * transactions refused as on any cluster, a real failover, and no process left behind.
 */

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const servers: { server: ClusterServer; available: boolean }[] = [
  { server: 'redis', available: await clusterServerAvailable('redis') },
  { server: 'valkey', available: await clusterServerAvailable('valkey') },
];

describe.each(servers)('$server cluster helper', ({ server, available }) => {
  const started: SpawnedCluster[] = [];
  afterAll(async () => {
    await Promise.all(started.map((c) => c.stop()));
  });

  it.skipIf(!available)('starts 3 masters that serve every slot and spread tagged keys', async () => {
    const cluster = await SpawnedCluster.start({ server });
    started.push(cluster);
    const topology = await cluster.topology();
    const masters = topology.filter((n) => n.role === 'master');
    expect(masters).toHaveLength(3);
    const served = masters.flatMap((m) => m.slots).reduce((sum, [a, b]) => sum + (b - a + 1), 0);
    expect(served).toBe(16384);

    const owners = new Set<number>();
    for (const tag of ['a', 'b', 'c', 'd', 'e', 'f']) owners.add(await cluster.masterOfKey(`x:{${tag}}:y`));
    expect(owners.size).toBeGreaterThanOrEqual(2);

    const client = cluster.client();
    try {
      await client.set('helper:{a}:k', '1');
      expect(await client.get('helper:{a}:k')).toBe('1');
      // Two slots in one MULTI: refused, as on every cluster (the keys must share a hash tag).
      const slotA = await cluster.keySlot('helper:{a}:k');
      const slotB = await cluster.keySlot('helper:{b}:k');
      expect(slotA).not.toBe(slotB);
      await expect(client.multi().set('helper:{a}:k', '2').set('helper:{b}:k', '2').exec()).rejects.toThrow();
      // One tag, one slot: accepted.
      await client.multi().set('helper:{a}:k', '3').set('helper:{a}:j', '3').exec();
      expect(await client.get('helper:{a}:j')).toBe('3');
    } finally {
      client.disconnect();
    }

    const ports = cluster.ports;
    await cluster.stop();
    for (const port of ports) expect(await portAnswers(port), `port ${port} still answers`).toBe(false);
  });

  it.skipIf(!available)('fails a killed master over to its replica, keeping replicated writes', async () => {
    const cluster = await SpawnedCluster.start({ server, replicas: 1 });
    started.push(cluster);
    expect((await cluster.topology()).filter((n) => n.role === 'replica')).toHaveLength(3);
    const key = 'helper:{failover}:k';
    const before = await cluster.masterOfKey(key);
    const client = cluster.client();
    try {
      // Written on the owning master, then WAIT: the write reached the replica before its master dies.
      const master = cluster.node(before);
      try {
        await master.set(key, 'kept');
        expect(await master.call('WAIT', '1', '5000')).toBe(1);
      } finally {
        master.disconnect();
      }
      await cluster.kill(before);
      await cluster.waitForFailover(before);
      const after = await cluster.masterOfKey(key);
      expect(after).not.toBe(before);
      expect(await client.get(key)).toBe('kept');
    } finally {
      client.disconnect();
    }
  });
});
