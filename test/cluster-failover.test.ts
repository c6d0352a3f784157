import { createProducer } from '@hfq/producer';
import type { AccountConfigInput } from '@hfq/shared';
import { accountQueueName } from '@hfq/shared/internal';
import { expectedChatContent, type Sim, startSim } from '@hfq/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterServerAvailable, SpawnedCluster } from './support/cluster.js';
import {
  chatContent,
  chatFor,
  duplicatesOf,
  perJobModels,
  reportFault,
  requestsByModel,
} from './support/faults.js';
import { type HfqProcess, startWorkerProcess } from './support/processes.js';
import { testPrefix } from './support/redis.js';
import { workerEnv } from './support/stack.js';
import { waitFor } from './support/wait.js';

/**
 * A master dies mid-run (kill -9) on a cluster with replicas: the replica takes over its slots, and
 * every job of the account that lived there completes. None is lost; work done twice (a job whose
 * completion the dead master had not yet replicated) is counted, not hidden.
 */

const JOBS = 240;
const busy: AccountConfigInput = {
  id: 'busy',
  tier: 'pro',
  hfToken: 'hf_cluster_busy_0123456789abcdef',
  limit: { max: 60, durationMs: 1_000 },
};
const calm: AccountConfigInput = {
  id: 'calm',
  tier: 'pro',
  hfToken: 'hf_cluster_calm_0123456789abcdef',
  limit: { max: 60, durationMs: 1_000 },
};

const available = await clusterServerAvailable('redis');

describe.skipIf(!available)('a master killed mid-run, with replicas', () => {
  let cluster: SpawnedCluster;
  let sim: Sim;
  let workers: HfqProcess[] = [];
  let cleanup: () => void = () => {};
  const prefix = testPrefix('cf');

  beforeAll(async () => {
    cluster = await SpawnedCluster.start({ replicas: 1, nodeTimeoutMs: 2_000 });
    sim = await startSim({ latency: { baseMs: 20, jitterMs: 10, minMs: 5, maxMs: 60, perItemMs: 0 } });
    sim.setToken(busy.hfToken as string, { label: 'busy' });
    sim.setToken(calm.hfToken as string, { label: 'calm' });
    const stack = workerEnv(sim, {
      redisUrl: '',
      prefix,
      accounts: [busy, calm],
      concurrency: 8,
      extra: {
        REDIS_CLUSTER_NODES: cluster.nodesEnv,
        // A job whose lock the dead master held is re-delivered within seconds, not 30 s.
        HFQ_LOCK_DURATION_MS: '5000',
        HFQ_STALLED_INTERVAL_MS: '2000',
        HFQ_MAX_STALLED_COUNT: '5',
      },
    });
    cleanup = stack.cleanup;
    workers = await Promise.all([startWorkerProcess(stack.env), startWorkerProcess(stack.env)]);
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    cleanup();
    await sim?.close();
    await cluster?.stop();
  });

  it('completes every job of the account whose master died; none lost, duplicates counted', async () => {
    const models = perJobModels(sim, 'cluster-failover', JOBS);
    const producer = createProducer({
      connection: { clusterNodes: [{ host: '127.0.0.1', port: cluster.ports[0] as number }] },
      prefix,
    });
    try {
      const jobs = models.map((model, i) => chatFor(i % 4 === 0 ? 'calm' : 'busy', model));
      const handles = await producer.enqueueMany(jobs);
      // Every job reached the replicas before a master dies (replication is asynchronous).
      await cluster.waitForReplication();
      const victim = await cluster.masterOfKey(`${prefix}:${accountQueueName('busy')}:wait`);
      const busyQueue = producer.queue('busy');
      await waitFor(
        async () => ((await busyQueue.getJobCounts('completed')).completed ?? 0) >= JOBS / 4,
        'a quarter of the jobs done',
        60_000,
      );
      await cluster.kill(victim);
      await cluster.waitForFailover(victim);
      const results = await Promise.all(
        handles.map((h) =>
          h.result({ timeoutMs: 120_000 }).then(
            (r) => ({ ok: true as const, r }),
            (err: Error) => ({ ok: false as const, err }),
          ),
        ),
      );
      const failed = results.filter((x) => !x.ok);
      results.forEach((x, i) => {
        if (x.ok)
          expect(chatContent(x.r.output)).toBe(
            expectedChatContent((jobs[i] as ReturnType<typeof chatFor>).messages),
          );
      });
      const byModel = requestsByModel(sim, models);
      const served = [...byModel.values()].filter((records) => records.some((r) => r.status === 200)).length;
      const row = reportFault({
        fault: `cluster: kill -9 of the master serving account "busy" (port ${victim}), replica takes over`,
        enqueued: JOBS,
        completed: results.length - failed.length,
        failed: failed.length,
        duplicated: duplicatesOf(byModel),
        notes: `every job served upstream: ${served}/${JOBS}`,
      });
      expect(failed.map((x) => (x.ok ? '' : x.err.message))).toEqual([]);
      expect(row.completed).toBe(JOBS);
      expect(served).toBe(JOBS);
    } finally {
      await producer.close();
    }
  });
});
