import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createLogger } from '@hfq/shared';
import { batchQueueName } from '@hfq/shared/internal';
import { expectedEmbedding } from '@hfq/sim';
import { Job, Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/processes.js';
import { redisUrl } from './support/redis.js';
import { startStack } from './support/stack.js';
import { waitFor } from './support/wait.js';

/**
 * A producer killed while its stream is still being read (see docs/architecture.md, "Batches are flows"): the seal it kept delayed
 * runs out, the batch is marked abandoned, and it completes with the items that were added.
 */

const TOKEN = 'hf_test_abandon_0123456789abcdef';

/** A producer process that adds two items of a stream that never ends, prints the batch id, then waits. */
const PRODUCER_SCRIPT = `
import { createProducer } from '@hfq/producer';
const producer = createProducer({ connection: process.env.REDIS_URL, prefix: process.env.HFQ_PREFIX });
async function* input() {
  yield 'first item';
  yield 'second item';
  await new Promise(() => {});
}
const batch = await producer.enqueueBatch(
  { account: 'acme', task: 'feature-extraction', model: 'sentence-transformers/all-MiniLM-L6-v2', items: input() },
  { flushMs: 10, sealTimeoutMs: 1000 },
);
console.log('batch ' + batch.id);
`;

describe('abandoned batch', () => {
  it('completes with the items added when its producer dies before sealing', async () => {
    const stack = await startStack({
      label: 'babandon',
      sim: { latency: { baseMs: 5 } },
      tokens: { [TOKEN]: { label: 'abandon' } },
      accounts: [{ id: 'acme', tier: 'pro', hfToken: TOKEN, limit: { max: 100, durationMs: 1000 } }],
    });
    const { prefix } = stack;
    const admin = stack.redis();
    await stack.startWorker({
      concurrency: 2,
      logger: createLogger({ name: 'abandon-test', level: 'silent' }),
    });
    const producer = stack.producer;
    const queue = new Queue(batchQueueName('acme'), { connection: admin, prefix });
    stack.defer(() => queue.close());
    const child = spawn(
      process.execPath,
      ['--conditions=hfq-source', '--import', 'tsx', '--input-type=module', '--eval', PRODUCER_SCRIPT],
      {
        cwd: ROOT,
        env: { ...process.env, REDIS_URL: redisUrl(), HFQ_PREFIX: prefix },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    stack.defer(() => child.kill('SIGKILL'));
    const lines = createInterface({ input: child.stdout });
    const batchId = await new Promise<string>((resolve, reject) => {
      lines.on('line', (line) => line.startsWith('batch ') && resolve(line.slice('batch '.length)));
      child.once('exit', (code) => reject(new Error(`producer exited (${code}) before enqueuing`)));
    });
    const batch = await producer.batch(batchId);
    // Both items are in and done while the input still waits: the parent must still wait too.
    await waitFor(async () => (await batch.progress()).ok >= 2, 'both items done', 15_000, 20);
    expect(await queue.getJobState(batchId)).toBe('waiting-children');

    child.kill('SIGKILL');
    const results = await batch.results({ timeoutMs: 15_000 });
    expect(results).toEqual([
      { ok: true, output: expectedEmbedding('first item') },
      { ok: true, output: expectedEmbedding('second item') },
    ]);
    await waitFor(
      async () => (await queue.getJobState(batchId)) === 'completed',
      'the parent to complete',
      15_000,
      20,
    );
    const parent = await Job.fromId(queue, batchId);
    expect(parent?.returnvalue).toMatchObject({ total: 2, ok: 2, failed: 0, sealed: 'abandoned' });
  });
});
