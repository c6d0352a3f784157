import { createProducer, type InferenceResult } from '@hfq/producer';
import type { AccountConfigInput, Job } from '@hfq/shared';
import { accountQueueName, credentialId, DomainLimiter } from '@hfq/shared/internal';
import { expectedEmbedding, maxInWindow, type Sim, startSim } from '@hfq/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, startBoardProcess } from './ops-support.js';
import { type ClusterServer, clusterServerAvailable, SpawnedCluster } from './support/cluster.js';
import { HfqProcess, startWorkerProcess } from './support/processes.js';
import { testPrefix } from './support/redis.js';
import { workerEnv } from './support/stack.js';

/**
 * hfq on a real 3-master cluster, with keys tagged per unit of state (docs/redis-cluster.md):
 * six accounts spread over at least two masters, two worker processes, single jobs and a batch
 * per account, one account failing over to its provider key on 402, one under a hidden limit.
 * Everything completes, nothing fails, batch results come back in input order, admissions per
 * token stay within the limit, and each account's keys live on exactly one master.
 */

const EMBEDDER = 'sentence-transformers/all-MiniLM-L6-v2';
const JOBS_PER_ACCOUNT = 50;
const BATCH_ITEMS = 20;
const KNOWN_LIMIT = { max: 40, durationMs: 1_000 };
const HIDDEN_LIMIT = 15;
const KEY = 'tg-cluster-key-0123456789';

const token = (id: string) => `hf_cluster_${id}_0123456789abcdef`;
const ids = ['north', 'south', 'east', 'west', 'paid', 'hidden'] as const;
const accounts: AccountConfigInput[] = ids.map((id) => ({
  id,
  tier: 'pro',
  hfToken: token(id),
  limit: id === 'hidden' ? { max: 40, durationMs: 1_000 } : KNOWN_LIMIT,
  ...(id === 'paid'
    ? {
        providerKeys: { together: { key: KEY, limits: [{ max: 100, durationMs: 1_000 }] } },
        fallbackProviders: ['together'],
      }
    : {}),
}));

const embed = (account: string, i: number): Job => ({
  account,
  task: 'feature-extraction',
  model: EMBEDDER,
  inputs: `${account} text ${i}`,
});

/**
 * The embedding of `text` as the route gives it: the router's feature-extraction answers one vector;
 * a provider's OpenAI-style embeddings API (the key route) answers a list with one vector.
 */
function expectEmbedding(output: unknown, text: string, route: string | undefined): void {
  const vector = expectedEmbedding(text);
  expect(output).toEqual(route === 'provider-key' ? [vector] : vector);
}

const servers: { server: ClusterServer; available: boolean }[] = [
  { server: 'redis', available: await clusterServerAvailable('redis') },
  { server: 'valkey', available: await clusterServerAvailable('valkey') },
];

describe.each(servers)('hfq on a 3-master $server cluster', ({ server, available }) => {
  let cluster: SpawnedCluster;
  let sim: Sim;
  let workers: HfqProcess[] = [];
  let cleanup: () => void = () => {};
  const prefix = testPrefix('ce');

  beforeAll(async () => {
    if (!available) return;
    cluster = await SpawnedCluster.start({ server });
    sim = await startSim({ latency: { baseMs: 0, jitterMs: 0, minMs: 2, maxMs: 20, perItemMs: 0 } });
    for (const id of ids) {
      sim.setToken(token(id), {
        label: id,
        ...(id === 'paid' ? { credits: { balanceUsd: 0.002, costPerRequestUsd: 0.0001 } } : {}),
        ...(id === 'hidden'
          ? { limits: [{ algorithm: 'sliding-window' as const, limit: HIDDEN_LIMIT, windowMs: 1_000 }] }
          : {}),
      });
    }
    sim.setToken(KEY, { label: 'key' });
    const stack = workerEnv(sim, {
      redisUrl: '',
      prefix,
      accounts,
      concurrency: 8,
      extra: { REDIS_CLUSTER_NODES: cluster.nodesEnv, HFQ_LIMITER_AUDIT: 'true' },
    });
    cleanup = stack.cleanup;
    const env = { ...stack.env, REDIS_URL: undefined };
    workers = await Promise.all([startWorkerProcess(env), startWorkerProcess(env)]);
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    cleanup();
    await sim?.close();
    await cluster?.stop();
  });

  it.skipIf(!available)('spreads the accounts over at least two masters', async () => {
    const masters = new Set<number>();
    for (const id of ids) masters.add(await cluster.masterOfKey(`${prefix}:${accountQueueName(id)}:wait`));
    expect(masters.size).toBeGreaterThanOrEqual(2);
  });

  it.skipIf(!available)(
    'completes every job and batch: nothing failed, results in order, limits held',
    async () => {
      const producer = createProducer({
        connection: { clusterNodes: [{ host: '127.0.0.1', port: cluster.ports[0] as number }] },
        prefix,
      });
      try {
        const jobs = ids.flatMap((id) => Array.from({ length: JOBS_PER_ACCOUNT }, (_, i) => embed(id, i)));
        const handles = await producer.enqueueMany(jobs);
        const batches = await Promise.all(
          ids.map((id) =>
            producer.enqueueBatch({
              account: id,
              task: 'feature-extraction',
              model: EMBEDDER,
              items: Array.from({ length: BATCH_ITEMS }, (_, i) => `${id} item ${i}`),
            }),
          ),
        );
        const results: InferenceResult[] = await Promise.all(
          handles.map((h) => h.result({ timeoutMs: 120_000 })),
        );
        results.forEach((r, i) => {
          expectEmbedding(r.output, (jobs[i] as { inputs: string }).inputs, r.route);
        });
        // The paid account ran out of credits and went on through its key, same jobs.
        const paidRoutes = new Set(results.filter((_, i) => jobs[i]?.account === 'paid').map((r) => r.route));
        expect(paidRoutes.has('provider-key')).toBe(true);
        for (const [b, id] of batches.map((batch, i) => [batch, ids[i]] as const)) {
          const out = await b.results({ timeoutMs: 120_000 });
          expect(out).toHaveLength(BATCH_ITEMS);
          out.forEach((item, i) => {
            expect(item.ok, `${id} item ${i}`).toBe(true);
            // The paid account's items may have gone through its key: either shape (see expectEmbedding).
            if (item.ok && id === 'paid') {
              const vector = expectedEmbedding(`${id} item ${i}`);
              expect([JSON.stringify(vector), JSON.stringify([vector])]).toContain(
                JSON.stringify(item.output),
              );
            } else if (item.ok) {
              expect(item.output).toEqual(expectedEmbedding(`${id} item ${i}`));
            }
          });
        }
        for (const id of ids) {
          const counts = await producer.queue(id).getJobCounts('failed', 'waiting', 'active', 'delayed');
          expect(counts, id).toEqual({ failed: 0, waiting: 0, active: 0, delayed: 0 });
        }
        // Admissions per token (Redis-side admission times, HFQ_LIMITER_AUDIT): never more than the
        // limit in any sliding second. (Arrival times at the in-process simulator bunch when this
        // loaded process stalls; the admissions are what the limiter decides.)
        const reader = cluster.client();
        try {
          const limiter = new DomainLimiter(reader, prefix);
          for (const id of ids.filter((i) => i !== 'hidden' && i !== 'paid')) {
            const admissions = await limiter.auditLog(await credentialId(token(id)));
            expect(admissions.length, id).toBeGreaterThanOrEqual(JOBS_PER_ACCOUNT);
            expect(maxInWindow(admissions, 1_000), id).toBeLessThanOrEqual(KNOWN_LIMIT.max);
          }
        } finally {
          reader.disconnect();
        }
      } finally {
        await producer.close();
      }
    },
  );

  it.skipIf(!available)(
    'keeps each account’s keys on exactly one master, and keys on two masters or more',
    async () => {
      const byMaster = await cluster.eachNode(async (redis, port) => {
        const keys: string[] = [];
        let cursor = '0';
        do {
          const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
          cursor = next;
          keys.push(...batch);
        } while (cursor !== '0');
        return { port, keys };
      });
      const withKeys = byMaster.filter((m) => m.keys.length > 0);
      // Every key carries a hash tag naming its unit of state (docs/redis-cluster.md, 'Key layout').
      const untagged = byMaster
        .flatMap((m) => m.keys)
        .filter((k) => !/\{[^{}]+\}/.test(k.slice(prefix.length)));
      expect(untagged).toEqual([]);
      expect(withKeys.length).toBeGreaterThanOrEqual(2);
      for (const id of ids) {
        const holders = byMaster.filter((m) => m.keys.some((k) => k.includes(`{${id}}`)));
        expect(
          holders.map((h) => h.port),
          id,
        ).toHaveLength(1);
      }
    },
  );

  it.skipIf(!available)('serves hfq status, credits, limit and the board from the cluster', async () => {
    const env = {
      REDIS_CLUSTER_NODES: cluster.nodesEnv,
      HFQ_PREFIX: prefix,
      HFQ_ACCOUNT: 'north',
      HF_TOKEN: token('north'),
      HFQ_TIER: 'pro',
    };
    const run = async (args: string[]) => {
      const proc = HfqProcess.start(args, env);
      const { code } = await proc.exited;
      expect(code, `${args.join(' ')}: ${proc.lines.join('\n')}`).toBe(0);
      return proc.lines.join('\n');
    };
    type Row = { account: string; counts: { completed: number }; configuredRate: { max: number } };
    const accountsOf = async () =>
      (JSON.parse(await run(['status', '--json'])) as { accounts: Row[] }).accounts;
    const north = (await accountsOf()).find((a) => a.account === 'north');
    expect(north?.counts.completed).toBeGreaterThan(0);
    expect(await run(['credits', 'status'])).toContain('north');
    await run(['limit', 'north', '25']);
    expect((await accountsOf()).find((a) => a.account === 'north')?.configuredRate.max).toBe(25);
    await run(['limit', 'north', 'default']);

    const { proc, url } = await startBoardProcess({ ...env, HFQ_BOARD_AUTH: 'off' });
    try {
      const queues = await http(`${url}/api/queues`);
      expect(queues.status).toBe(200);
      expect(queues.text).toContain(accountQueueName('north'));
      expect((await http(`${url}/status.json`)).status).toBe(200);
    } finally {
      expect((await proc.stop()).code).toBe(0);
    }
  });
});
