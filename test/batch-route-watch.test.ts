import { beforeEach, describe, expect, test } from 'vitest';
import {
  type BatchApiTarget,
  ProviderBatchClient,
} from '../packages/worker/src/batch-route/batch-api-client.js';
import { submitBatch } from '../packages/worker/src/batch-route/batch-lifecycle.js';
import { BatchRecordStore } from '../packages/worker/src/batch-route/batch-record-store.js';
import { type FinishedBatch, watchBatches } from '../packages/worker/src/batch-route/batch-watch.js';
import { chatBatchRequests } from './support/jobs.js';
import { testPrefix, testRedis } from './support/redis.js';
import { simForFile } from './support/sim-clock.js';

const MINUTE = 60_000;
const NOW = Date.now();

let clock = 0;
const sim = simForFile(() => clock);
beforeEach(() => {
  clock = 1_000_000;
  sim.configure({ batchApi: { turnaround: { kind: 'fixed', ms: 60 * MINUTE }, failureShare: 0 } });
});

const target = (provider: 'cerebras' | 'together'): BatchApiTarget => ({
  provider,
  baseUrl: sim.providerUrls[provider],
  style: provider === 'together' ? 'together' : 'openai',
  limits: { maxRequests: 50_000, maxBytes: 1e8 },
});
const model = { cerebras: 'llama3.1-8b', together: 'meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo' };

async function submitted(provider: 'cerebras' | 'together', key: string, jobs: number) {
  const store = new BatchRecordStore(testRedis(), testPrefix());
  const client = new ProviderBatchClient(target(provider), key);
  const requests = chatBatchRequests(jobs, model[provider]);
  const record = await submitBatch(store, client, {
    account: 'acme',
    provider,
    keyDomain: key,
    deadlineMs: NOW + 120 * MINUTE,
    hedgeAtMs: NOW + 20 * MINUTE,
    requests,
  });
  return { store, client, record, jobIds: requests.map((r) => r.jobId) };
}

describe('watchBatches', () => {
  test.each(['cerebras', 'together'] as const)(
    '%s: waits before the hedge time, cancels at it, then hands back finished and unfinished jobs once',
    async (provider) => {
      const key = `key-watch-${provider}`;
      sim.setToken(key, { label: `watch-${provider}` });
      const { store, client, record, jobIds } = await submitted(provider, key, 30);
      const delivered: FinishedBatch[] = [];
      const pass = (nowMs: number) =>
        watchBatches({
          store,
          account: 'acme',
          nowMs,
          clientFor: () => client,
          deliver: async (finished) => {
            delivered.push(finished);
          },
        });
      clock += 10 * MINUTE;
      expect(await pass(NOW + 10 * MINUTE)).toEqual([
        { recordId: record.id, action: 'waiting', status: 'in_progress' },
      ]);
      clock += 10 * MINUTE;
      const hedged = await pass(NOW + 20 * MINUTE);
      expect(hedged?.[0]?.action).toBe('hedged');
      clock += 60 * MINUTE; // a cancelling batch may still finish lines; none are lost by waiting
      const finished = await pass(NOW + 80 * MINUTE);
      expect(finished).toEqual([{ recordId: record.id, action: 'finished', status: 'cancelled' }]);
      expect(delivered).toHaveLength(1);
      const [batch] = delivered;
      const done = [...(batch?.results.byJob.keys() ?? [])];
      expect(done.length).toBeGreaterThan(0);
      expect(batch?.unfinishedJobIds.length).toBeGreaterThan(0);
      // Every job exactly once: finished in the batch, or handed back for real time.
      expect([...done, ...(batch?.unfinishedJobIds ?? [])].sort()).toEqual([...jobIds].sort());
      expect(sim.batchStats().byToken[`watch-${provider}`]?.linesSucceeded).toBe(done.length);
      expect(await pass(NOW + 90 * MINUTE)).toEqual([]); // closed
      expect(await store.openRecords('acme')).toEqual([]);
    },
  );

  test('a crash while applying results keeps the record open; the next pass delivers the same results', async () => {
    sim.configure({ batchApi: { turnaround: { kind: 'fixed', ms: 5 * MINUTE }, failureShare: 0.2 } });
    const { store, client, record, jobIds } = await submitted('cerebras', 'key-watch-crash', 20);
    clock += 5 * MINUTE;
    const failing = await watchBatches({
      store,
      account: 'acme',
      nowMs: NOW,
      clientFor: () => client,
      deliver: async () => {
        throw new Error('worker died while completing jobs');
      },
    }).catch((error: unknown) => error);
    expect(failing).toBeInstanceOf(Error);
    expect((await store.get('acme', record.id))?.state).toBe('submitted');
    const delivered: FinishedBatch[] = [];
    await watchBatches({
      store,
      account: 'acme',
      nowMs: NOW,
      clientFor: () => client,
      deliver: async (finished) => {
        delivered.push(finished);
      },
    });
    expect(delivered).toHaveLength(1);
    const results = delivered[0]?.results.byJob;
    expect(results?.size).toBe(20);
    expect(delivered[0]?.unfinishedJobIds).toEqual([]);
    const failed = [...(results?.values() ?? [])].filter((result) => !result.ok);
    expect(failed.length).toBeGreaterThan(0); // failed lines come back with their error, to retry in real time
    expect([...(results?.keys() ?? [])].sort()).toEqual([...jobIds].sort());
  });

  test('a cancel recorded and not sent (a crash between the two) is sent by the next pass', async () => {
    const { store, client, record } = await submitted('cerebras', 'key-watch-half-cancel', 5);
    await store.update('acme', record.id, { state: 'cancelling' }); // what cancelBatch writes first
    const pass = await watchBatches({
      store,
      account: 'acme',
      nowMs: NOW, // before the hedge time: only the record says to cancel
      clientFor: () => client,
      deliver: async () => {},
    });
    expect(pass).toEqual([{ recordId: record.id, action: 'hedged', status: 'cancelling' }]);
    expect((await client.get(record.batchId as string)).status).toBe('cancelled');
  });

  test('two watchers at once: one pass runs, the other does nothing', async () => {
    sim.configure({ batchApi: { turnaround: { kind: 'fixed', ms: 5 * MINUTE } } });
    const { store, client } = await submitted('cerebras', 'key-watch-two', 5);
    clock += 5 * MINUTE;
    let deliveries = 0;
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered: () => void = () => {};
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const options = {
      store,
      account: 'acme',
      nowMs: NOW,
      clientFor: () => client,
      deliver: async () => {
        deliveries++;
        entered();
        await held;
      },
    };
    const first = watchBatches(options);
    await inside;
    expect(await watchBatches(options)).toBeUndefined();
    release();
    expect((await first)?.[0]?.action).toBe('finished');
    expect(deliveries).toBe(1);
  });
});
