import { spawn } from 'node:child_process';
import { BatchAbandonedError } from '@hfq/producer';
import { batchStateKey } from '@hfq/shared/internal';
import { expectedEmbedding } from '@hfq/sim';
import { beforeEach, describe, expect, it } from 'vitest';
import { ROOT } from './support/processes.js';
import { redisUrl } from './support/redis.js';
import { type Stack, startStack } from './support/stack.js';
import { waitFor } from './support/wait.js';

/**
 * A batch retried with the same id after its producer crashed: it completes (the retry adds what
 * is missing) or fails with a clear error; it never hangs and an abandoned batch never looks
 * complete. The crash points are forced with `batchHooks` inside a real producer process.
 */

const TOKEN = 'hf_test_batchretry_0123456789abcdef';
const MODEL = 'sentence-transformers/all-MiniLM-L6-v2';
const N = 20;
const texts = Array.from({ length: N }, (_, i) => `retry item ${i}`);

/** A producer process that enqueues the batch and kills itself (SIGKILL) at the hook named by HOOK. */
const CRASHING_PRODUCER = `
import { createProducer } from '@hfq/producer';
import { batchHooks } from '@hfq/producer/internal';
const kill = () => process.kill(process.pid, 'SIGKILL');
if (process.env.HOOK === 'afterStateWritten') batchHooks.afterStateWritten = kill;
if (process.env.HOOK === 'afterChunk') batchHooks.afterChunk = kill;
const producer = createProducer({ connection: process.env.REDIS_URL, prefix: process.env.HFQ_PREFIX });
const texts = JSON.parse(process.env.TEXTS);
const batch = await producer.enqueueBatch(
  { account: 'acme', task: 'feature-extraction', model: '${MODEL}', items: texts },
  { batchId: process.env.BATCH_ID, chunkSize: 5, sealTimeoutMs: Number(process.env.SEAL_MS) },
);
await batch.enqueued();
console.log('not killed');
`;

function runCrashingProducer(env: Record<string, string>): Promise<number | null> {
  const child = spawn(
    process.execPath,
    ['--conditions=hfq-source', '--import', 'tsx', '--input-type=module', '--eval', CRASHING_PRODUCER],
    {
      cwd: ROOT,
      env: { ...process.env, REDIS_URL: redisUrl(), TEXTS: JSON.stringify(texts), ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ? null : code)));
}

describe('batch retry after a crash', () => {
  let stack: Stack;

  beforeEach(async () => {
    stack = await startStack({
      label: 'bretry',
      sim: { latency: { baseMs: 2 } },
      tokens: { [TOKEN]: { label: 'retry' } },
      accounts: [{ id: 'acme', tier: 'pro', hfToken: TOKEN, limit: { max: 1000, durationMs: 1000 } }],
      workers: 1,
      worker: { concurrency: 4 },
    });
  });

  for (const hook of ['afterStateWritten', 'afterChunk'] as const) {
    it(`a retried batch id completes the batch after a crash at ${hook}, each item run once`, async () => {
      const batchId = `retry-${hook}`;
      const { sim, prefix } = stack;
      const admin = stack.redis();
      expect(
        await runCrashingProducer({ HFQ_PREFIX: prefix, HOOK: hook, BATCH_ID: batchId, SEAL_MS: '600000' }),
      ).toBe(null);
      const producer = stack.newProducer();
      const batch = await producer.enqueueBatch(
        { account: 'acme', task: 'feature-extraction', model: MODEL, items: texts },
        { batchId, chunkSize: 5 },
      );
      expect(await batch.enqueued()).toMatchObject({ items: N });
      const results = await batch.results({ timeoutMs: 30_000 });
      expect(results).toEqual(texts.map((t) => ({ ok: true, output: expectedEmbedding(t) })));
      // The crash added at most one chunk, read back like the rest; nothing ran twice.
      expect(sim.received({ route: 'router' })).toBe(N);
      const layout = await admin.lrange(batchStateKey(prefix, 'acme', batchId, 'layout'), 0, -1);
      expect(layout.reduce((sum, c) => sum + Number(c), 0)).toBe(N);
    });
  }

  it('an abandoned batch never looks complete, and a retry of its id fails saying so', async () => {
    const batchId = 'retry-abandoned';
    const { prefix } = stack;
    const admin = stack.redis();
    expect(
      await runCrashingProducer({
        HFQ_PREFIX: prefix,
        HOOK: 'afterChunk',
        BATCH_ID: batchId,
        SEAL_MS: '1000',
      }),
    ).toBe(null);
    const producer = stack.newProducer();
    await waitFor(
      async () => (await admin.hget(batchStateKey(prefix, 'acme', batchId), 'sealed')) === 'abandoned',
      'the seal to mark the batch abandoned',
      30_000,
    );
    const handle = await producer.batch(batchId);
    await expect(handle.enqueued()).rejects.toBeInstanceOf(BatchAbandonedError);
    const retry = producer.enqueueBatch(
      { account: 'acme', task: 'feature-extraction', model: MODEL, items: texts },
      { batchId, chunkSize: 5 },
    );
    await expect(retry).rejects.toThrow(/abandoned after 5 item\(s\)/);
    // What was added is still readable.
    const results = await handle.results({ timeoutMs: 30_000 });
    expect(results).toEqual(texts.slice(0, 5).map((t) => ({ ok: true, output: expectedEmbedding(t) })));
  });
});
