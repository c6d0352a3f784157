/**
 * The batch record in Redis and the resumable lifecycle, against real Redis and the simulator
 * over HTTP: a crash at any step of a submit (the client abandoned there, or the process killed)
 * loses nothing and never creates a second batch; a stuck batch is cancelled and what finished
 * is kept; a collected record leaves the account's index.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { beforeEach, describe, expect, test } from 'vitest';
import { hashTagOf } from '../packages/shared/src/state-keys.js';
import {
  type BatchApiTarget,
  ProviderBatchClient,
} from '../packages/worker/src/batch-route/batch-api-client.js';
import {
  cancelBatch,
  pollBatch,
  type SubmitStep,
  submitBatch,
} from '../packages/worker/src/batch-route/batch-lifecycle.js';
import {
  BATCH_RECORD_TTL_MS,
  BatchRecordStore,
  batchRecordIndexKey,
  batchRecordKey,
} from '../packages/worker/src/batch-route/batch-record-store.js';
import { chatBatchRequests } from './support/jobs.js';
import { ROOT } from './support/processes.js';
import { redisUrl, testPrefix, testRedis } from './support/redis.js';
import { simForFile } from './support/sim-clock.js';

const MINUTE = 60_000;
const SUBMIT_STEPS: SubmitStep[] = [
  'upload-answered',
  'upload-recorded',
  'create-answered',
  'create-recorded',
];

let clock = 0;
const sim = simForFile(() => clock);
beforeEach(() => {
  clock = 1_000_000;
  sim.configure({ batchApi: { turnaround: { kind: 'fixed', ms: 10 * MINUTE }, failureShare: 0 } });
});

const target = (): BatchApiTarget => ({
  provider: 'cerebras',
  baseUrl: sim.providerUrls.cerebras,
  style: 'openai',
  limits: { maxRequests: 50_000, maxBytes: 1e8 },
});

const requests = (n: number, from = 0) => chatBatchRequests(n, 'llama3.1-8b', from);

const input = (n: number) => ({
  account: 'acme',
  provider: 'cerebras',
  keyDomain: 'key-a',
  deadlineMs: Date.now() + 60 * MINUTE,
  hedgeAtMs: Date.now() + 30 * MINUTE,
  requests: requests(n),
});

class Crash extends Error {}

describe('the record', () => {
  test('tagged with the account, with a TTL; opening it again keeps its state and first plan', async () => {
    const redis = testRedis();
    const prefix = testPrefix();
    const store = new BatchRecordStore(redis, prefix);
    const spec = { ...input(3), endpoint: '/v1/chat/completions', jobIds: ['a', 'b', 'c'] };
    const first = await store.open('acme', spec);
    expect(first).toMatchObject({ state: 'planned', jobIds: ['a', 'b', 'c'], inputFileId: undefined });
    const key = batchRecordKey(prefix, 'acme', first.id);
    expect(hashTagOf(key)).toBe('acme');
    expect(hashTagOf(batchRecordIndexKey(prefix, 'acme'))).toBe('acme');
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(BATCH_RECORD_TTL_MS - 10_000);
    expect(await redis.pttl(batchRecordIndexKey(prefix, 'acme'))).toBeGreaterThan(0);

    await store.update('acme', first.id, { state: 'uploaded', inputFileId: 'file-1' });
    const again = await store.open('acme', { ...spec, hedgeAtMs: spec.hedgeAtMs + 1 });
    expect(again).toMatchObject({
      id: first.id,
      state: 'uploaded',
      inputFileId: 'file-1',
      hedgeAtMs: spec.hedgeAtMs,
    });
    expect((await store.openRecords('acme')).map((record) => record.id)).toEqual([first.id]);
    await store.update('acme', first.id, { state: 'collected' });
    expect(await store.openRecords('acme')).toEqual([]);
  });
});

describe('a crash during submit', () => {
  test.each(SUBMIT_STEPS)('abandoned after %s: the resume creates exactly one batch', async (step) => {
    const redis = testRedis();
    const store = new BatchRecordStore(redis, testPrefix());
    const key = `key-crash-${step}`;
    sim.setToken(key, { label: `crash-${step}` });
    const client = new ProviderBatchClient(target(), key);
    const plan = input(12);
    const crashed = await submitBatch(store, client, plan, {
      afterStep: (at) => {
        if (at === step) throw new Crash(at);
      },
    }).catch((error: unknown) => error);
    expect(crashed).toBeInstanceOf(Crash);

    const resumed = await submitBatch(store, client, plan);
    const again = await submitBatch(store, client, plan);
    const { batches } = await client.list();
    expect(batches).toHaveLength(1);
    expect(sim.batchStats().byToken[`crash-${step}`]?.batches).toBe(1); // the simulator's own count
    expect(resumed).toMatchObject({
      state: 'submitted',
      batchId: batches[0]?.id,
      inputFileId: batches[0]?.inputFileId,
    });
    expect(again.batchId).toBe(resumed.batchId);
    expect(resumed.jobIds).toEqual(plan.requests.map((request) => request.jobId));
  });

  test('a worker process killed between the create and its record: the resume finds the batch', async () => {
    const redis = testRedis();
    const prefix = testPrefix();
    const key = 'key-killed-process';
    sim.setToken(key, { label: 'killed' });
    const child = spawn(
      process.execPath,
      ['--conditions=hfq-source', '--import', 'tsx', 'test/support/batch-submit-child.ts'],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          REDIS_URL: redisUrl(),
          HFQ_TEST_PREFIX: prefix,
          HFQ_TEST_BATCH_URL: sim.providerUrls.cerebras,
          HFQ_TEST_KEY: key,
          HFQ_TEST_JOBS: '12',
          HFQ_TEST_KILL_AT: 'create-answered',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    expect({ code, signal, out }).toMatchObject({
      signal: 'SIGKILL',
      out: expect.stringContaining('killed at create-answered'),
    });

    const store = new BatchRecordStore(redis, prefix);
    const [left] = await store.openRecords('acme');
    expect(left).toMatchObject({ state: 'creating', batchId: undefined });
    expect(left?.inputFileId).toBeDefined();
    const client = new ProviderBatchClient(target(), key);
    const resumed = await submitBatch(store, client, input(12));
    const { batches } = await client.list();
    expect(batches).toHaveLength(1);
    expect(sim.batchStats().byToken.killed?.batches).toBe(1);
    expect(resumed).toMatchObject({ id: left?.id, state: 'submitted', batchId: batches[0]?.id });
  });
});

describe('polling, collecting, hedging', () => {
  test('a completed batch is collected once terminal; a crash while collecting collects again', async () => {
    const redis = testRedis();
    const store = new BatchRecordStore(redis, testPrefix());
    const client = new ProviderBatchClient(target(), 'key-collect');
    const record = await submitBatch(store, client, input(20));
    clock += 5 * MINUTE;
    const early = await pollBatch(client, record);
    expect(early.view.terminal).toBe(false);
    expect(early.results).toBeUndefined();
    clock += 5 * MINUTE;
    const first = await pollBatch(client, record);
    const second = await pollBatch(client, record); // as after a crash before the record was closed
    expect(first.results?.byJob.size).toBe(20);
    expect([...(second.results?.byJob.keys() ?? [])].sort()).toEqual(
      [...(first.results?.byJob.keys() ?? [])].sort(),
    );
    expect((await store.openRecords('acme')).map((open) => open.id)).toEqual([record.id]);
    await store.update('acme', record.id, { state: 'collected' });
    expect(await store.openRecords('acme')).toEqual([]);
  });

  test('a slow batch cancelled at its hedge time: what finished is kept, nothing finishes after, each job once', async () => {
    sim.configure({ batchApi: { turnaround: { kind: 'fixed', ms: 60 * MINUTE } } });
    const redis = testRedis();
    const store = new BatchRecordStore(redis, testPrefix());
    const client = new ProviderBatchClient(target(), 'key-hedge');
    sim.setToken('key-hedge', { label: 'hedge' });
    const record = await submitBatch(store, client, input(40));
    clock += 20 * MINUTE; // the hedge time: a third of the turnaround gone
    const cancelling = await cancelBatch(store, client, record);
    expect(cancelling.status).toBe('cancelling');
    expect((await store.get('acme', record.id))?.state).toBe('cancelling');
    clock += 60 * MINUTE;
    const { view, results } = await pollBatch(client, record);
    expect(view.status).toBe('cancelled');
    const finished = [...(results?.byJob.values() ?? [])];
    expect(finished.length).toBeGreaterThan(0);
    expect(finished.length).toBeLessThan(40);
    expect(finished.every((result) => result.ok)).toBe(true);
    // The rest runs in real time: the provider charged only the lines it finished, once.
    const charged = sim.batchStats().byToken.hedge;
    expect(charged?.linesSucceeded).toBe(finished.length);
    expect(view.counts?.completed).toBe(finished.length);
  });
});
