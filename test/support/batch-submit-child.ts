/**
 * A worker's batch submit as its own OS process, killed (SIGKILL, no clean-up) right after the
 * step named by `HFQ_TEST_KILL_AT`: what a crash of the worker holding a batch leaves behind.
 * Env: REDIS_URL, HFQ_TEST_PREFIX, HFQ_TEST_BATCH_URL, HFQ_TEST_KEY, HFQ_TEST_JOBS, HFQ_TEST_KILL_AT.
 */
import { Redis } from 'ioredis';
import { ProviderBatchClient } from '../../packages/worker/src/batch-route/batch-api-client.js';
import { submitBatch } from '../../packages/worker/src/batch-route/batch-lifecycle.js';
import { BatchRecordStore } from '../../packages/worker/src/batch-route/batch-record-store.js';
import { chatBatchRequests } from './jobs.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const redis = new Redis(env('REDIS_URL'));
const store = new BatchRecordStore(redis, env('HFQ_TEST_PREFIX'));
const client = new ProviderBatchClient(
  {
    provider: 'cerebras',
    baseUrl: env('HFQ_TEST_BATCH_URL'),
    style: 'openai',
    limits: { maxRequests: 50_000, maxBytes: 1e8 },
  },
  env('HFQ_TEST_KEY'),
);
const jobs = Number(env('HFQ_TEST_JOBS'));
const requests = chatBatchRequests(jobs, 'llama3.1-8b');
await submitBatch(
  store,
  client,
  {
    account: 'acme',
    provider: 'cerebras',
    keyDomain: 'key-a',
    deadlineMs: 2e12,
    hedgeAtMs: 1.9e12,
    requests,
  },
  {
    afterStep: (step) => {
      if (step !== env('HFQ_TEST_KILL_AT')) return;
      process.stdout.write(`killed at ${step}\n`);
      process.kill(process.pid, 'SIGKILL');
    },
  },
);
process.stdout.write('submitted\n');
await redis.quit();
