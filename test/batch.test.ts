import { PassThrough } from 'node:stream';
import type { Batch, BatchItemResult, Producer } from '@hfq/producer';
import { createLogger } from '@hfq/shared';
import { BATCH_FIELDS, batchQueueName, batchStateKey } from '@hfq/shared/internal';
import { expectedEmbedding, expectedSimilarity } from '@hfq/sim';
import type { HfqWorker } from '@hfq/worker';
import { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { beforeEach, describe, expect, it } from 'vitest';
import { type Stack, startStack } from './support/stack.js';

/**
 * Batches end to end (see docs/architecture.md, "Batches are flows"): an in-process worker, the simulator over HTTP, real Redis.
 */

const TOKEN = 'hf_test_batch_0123456789abcdef';
const EMBEDDER = 'sentence-transformers/all-MiniLM-L6-v2';
const SIMILARITY = 'sentence-transformers/paraphrase-MiniLM-L3-v2';

let stack: Stack;
let admin: Redis;
let producer: Producer;

function startWorker(concurrency = 8): Promise<HfqWorker> {
  return stack.startWorker({ concurrency, logger: createLogger({ name: 'batch-test', level: 'silent' }) });
}

function texts(n: number, label = 'text'): string[] {
  return Array.from({ length: n }, (_, i) => `${label} number ${i}`);
}

/** Each ok result is the embedding of its own input: proves input order. */
function expectEmbeddings(results: BatchItemResult[], inputs: string[]): void {
  expect(results).toHaveLength(inputs.length);
  results.forEach((result, i) => {
    if (result.ok) expect(result.output, `item ${i}`).toEqual(expectedEmbedding(inputs[i] as string));
  });
}

async function waitFor<T>(
  read: () => Promise<T>,
  test: (value: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (test(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The batch's parent job; with `until`, once it reaches that state. */
async function parentOf(
  batch: Batch,
  until?: string,
): Promise<{ state: string; job: Job | undefined; close: () => Promise<void> }> {
  const queue = new Queue(batchQueueName('acme'), { connection: admin, prefix: stack.prefix });
  const read = async () => {
    // State first: a job read before it finished would lack its return value.
    const state = await queue.getJobState(batch.id);
    return { state, job: await Job.fromId(queue, batch.id) };
  };
  const { state, job } = until ? await waitFor(read, (p) => p.state === until) : await read();
  return { state, job, close: () => queue.close() };
}

beforeEach(async () => {
  stack = await startStack({
    label: 'batch',
    sim: {
      latency: { baseMs: 5, jitterMs: 0, perItemMs: 1 },
      maxItemsPerRequest: null,
      models: { [SIMILARITY]: { providers: { 'hf-inference': { task: 'sentence-similarity' } } } },
    },
    tokens: { [TOKEN]: { label: 'batch' } },
    accounts: [{ id: 'acme', tier: 'pro', hfToken: TOKEN, limit: { max: 100, durationMs: 1000 } }],
  });
  admin = stack.redis();
  producer = stack.producer;
});

describe('batches', () => {
  it('keeps input order and per-item errors when failing children finish before their slow siblings', async () => {
    // Successes are slow (300 ms); by arrival order: three successes, then three immediate 400s.
    stack.sim.configure({ latency: { baseMs: 300, jitterMs: 0, perItemMs: 0 } });
    stack.sim.script(TOKEN, [
      { status: 200 },
      { status: 200 },
      { status: 200 },
      { status: 400, body: { error: 'Input is not valid for this model' } },
      { status: 400, body: { error: 'Input is not valid for this model' } },
      { status: 400, body: { error: 'Input is not valid for this model' } },
    ]);
    await startWorker(8);
    const inputs = texts(20);
    const batch = await producer.enqueueBatch({
      account: 'acme',
      task: 'feature-extraction',
      model: EMBEDDER,
      items: inputs,
    });
    const results = await batch.results({ timeoutMs: 30_000 });

    expectEmbeddings(results, inputs);
    const failed = results.filter((r) => !r.ok);
    expect(failed).toHaveLength(3);
    for (const f of failed) expect(f.ok === false && f.error).toMatch(/400.*Input is not valid/);
    // The failures answered first; the slow successes they overtook are still in their places.
    const scripted = stack.sim.requests({ scripted: true });
    const firstFailure = Math.min(...scripted.filter((r) => r.status === 400).map((r) => r.t + r.durationMs));
    const slowDone = Math.min(...scripted.filter((r) => r.status === 200).map((r) => r.t + r.durationMs));
    expect(firstFailure).toBeLessThan(slowDone);

    // The parent completes either way, with the counts; Bull Board sees them as its progress.
    const progress = await waitFor(
      () => batch.progress(),
      (p) => p.finished,
    );
    expect(progress).toMatchObject({ total: 20, ok: 17, failed: 3, cancelled: 0, done: 20, sealed: true });
    const parent = await parentOf(batch, 'completed');
    expect(parent.job?.progress).toMatchObject({ progress: 100, total: 20, ok: 17, failed: 3 });
    expect(parent.job?.returnvalue).toMatchObject({
      batchId: batch.id,
      total: 20,
      ok: 17,
      failed: 3,
      childrenFailed: 3,
    });
    await parent.close();
    // Results are out: the children are gone from Redis.
    expect(
      await producer.queue('acme').getJobCountByTypes('completed', 'failed', 'waiting', 'prioritized'),
    ).toBe(0);
  });

  it('never completes the parent before a slow stream has added every item', async () => {
    await startWorker(4);
    const inputs = texts(7, 'streamed');
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    async function* slowInput() {
      yield* inputs.slice(0, 3);
      await gate; // the first chunk is added and finishes while the input waits here
      yield* inputs.slice(3);
    }
    const batch = await producer.enqueueBatch(
      { account: 'acme', task: 'feature-extraction', model: EMBEDDER, items: slowInput() },
      { flushMs: 20 },
    );
    await waitFor(
      () => batch.progress(),
      (p) => p.ok === 3,
    );
    const midway = await parentOf(batch);
    expect(midway.state).toBe('waiting-children');
    await midway.close();
    expect((await batch.progress()).sealed).toBe(false);

    release();
    expect(await batch.enqueued()).toEqual({ items: 7, children: 7 });
    const results = await batch.results({ timeoutMs: 20_000 });
    expect(results.every((r) => r.ok)).toBe(true);
    expectEmbeddings(results, inputs);
    const progress = await waitFor(
      () => batch.progress(),
      (p) => p.finished,
    );
    expect(progress).toMatchObject({ total: 7, ok: 7, failed: 0, sealed: true });
    const parent = await parentOf(batch, 'completed');
    await parent.close();
  });

  it('coalesces items into one request each, and splits a request the upstream finds too large', async () => {
    stack.sim.configure({ maxItemsPerRequest: 4, tooLargeStatus: 413 });
    await startWorker(4);
    const inputs = texts(21, 'coalesced');
    const batch = await producer.enqueueBatch({
      account: 'acme',
      task: 'feature-extraction',
      model: EMBEDDER,
      items: inputs,
      coalesce: 16,
    });
    expect(await batch.enqueued()).toEqual({ items: 21, children: 2 });
    const results = await batch.results({ timeoutMs: 30_000 });
    expect(results.every((r) => r.ok)).toBe(true);
    expectEmbeddings(results, inputs);

    const router = stack.sim.requests({ route: 'router' });
    expect(router.filter((r) => r.status === 413).length).toBeGreaterThanOrEqual(1);
    const served = router.filter((r) => r.status === 200);
    // Every item was answered once, by requests within the upstream's limit.
    expect(served.reduce((sum, r) => sum + r.items, 0)).toBe(21);
    expect(Math.max(...served.map((r) => r.items))).toBeLessThanOrEqual(4);
    const progress = await waitFor(
      () => batch.progress(),
      (p) => p.finished,
    );
    expect(progress).toMatchObject({ total: 21, ok: 21, failed: 0 });
  });

  it('splits coalesced sentence-similarity requests back per item (422 as too large)', async () => {
    stack.sim.configure({ maxItemsPerRequest: 3, tooLargeStatus: 422 });
    await startWorker(4);
    const items = [
      { source_sentence: 'a cat', sentences: ['a dog', 'a kitten'] },
      { source_sentence: 'a cat', sentences: ['a car'] },
      { source_sentence: 'a cat', sentences: ['the sea', 'a lion'] },
      { source_sentence: 'a boat', sentences: ['a ship'] },
    ];
    const batch = await producer.enqueueBatch({
      account: 'acme',
      task: 'sentence-similarity',
      model: SIMILARITY,
      items,
      coalesce: 8,
    });
    const results = await batch.results({ timeoutMs: 30_000 });
    expect(results).toEqual(
      items.map((item) => ({ ok: true, output: expectedSimilarity(item.source_sentence, item.sentences) })),
    );
    expect(stack.sim.requests({ route: 'router', status: 422 }).length).toBeGreaterThanOrEqual(1);
  });

  it('reads in order through a small window from another process, keeps or removes children, writes JSONL', async () => {
    await startWorker(8);
    const inputs = texts(50, 'windowed');
    const spec = { account: 'acme', task: 'feature-extraction' as const, model: EMBEDDER, coalesce: 3 };
    const batch = await producer.enqueueBatch({ ...spec, items: inputs }, { batchId: 'nightly-run-1' });
    // The same id attaches to the existing batch and adds nothing.
    const again = await producer.enqueueBatch(
      { ...spec, items: ['something else'] },
      { batchId: 'nightly-run-1' },
    );
    expect(again.id).toBe(batch.id);
    expect(await batch.enqueued()).toEqual({ items: 50, children: 17 });
    expect(await again.enqueued()).toEqual({ items: 50, children: 17 });

    const other = stack.newProducer();
    try {
      const handle = await other.batch('nightly-run-1');
      const kept: BatchItemResult[] = [];
      for await (const result of handle.stream({ windowItems: 4, remove: false, timeoutMs: 20_000 }))
        kept.push(result);
      expect(kept.every((r) => r.ok)).toBe(true);
      expectEmbeddings(kept, inputs);
    } finally {
      await other.close();
    }
    expect(stack.sim.received({ route: 'router' })).toBe(17);
    expect(await producer.queue('acme').getCompletedCount()).toBe(17);

    const out = new PassThrough();
    const lines: string[] = [];
    out.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
    expect(await batch.writeJsonl(out, { timeoutMs: 20_000 })).toEqual({ items: 50, ok: 50, failed: 0 });
    expect(lines.map((line) => JSON.parse(line))).toEqual(
      inputs.map((text, index) => ({ index, ok: true, output: expectedEmbedding(text) })),
    );
    expect(await producer.queue('acme').getCompletedCount()).toBe(0);
  });

  it('cancels: children not started are removed, running ones finish, results say which were cancelled', async () => {
    stack.sim.configure({ latency: { baseMs: 150, jitterMs: 0, perItemMs: 0 } });
    await startWorker(2);
    const inputs = texts(40, 'cancelled');
    const batch = await producer.enqueueBatch({
      account: 'acme',
      task: 'feature-extraction',
      model: EMBEDDER,
      items: inputs,
    });
    await batch.enqueued();
    await waitFor(
      () => batch.progress(),
      (p) => p.ok >= 2,
    );
    await batch.cancel();

    const results = await batch.results({ timeoutMs: 20_000 });
    expectEmbeddings(results, inputs);
    const ok = results.filter((r) => r.ok).length;
    const cancelled = results.filter((r) => !r.ok && r.error === 'cancelled').length;
    expect(ok).toBeGreaterThanOrEqual(2);
    expect(cancelled).toBeGreaterThan(20);
    expect(ok + cancelled).toBe(40);
    // Nothing cancelled reached the upstream.
    expect(stack.sim.received({ route: 'router' })).toBe(ok);
    const progress = await waitFor(
      () => batch.progress(),
      (p) => p.finished,
    );
    expect(progress).toMatchObject({ total: 40, ok, failed: 0, cancelled, cancelRequested: true });
    expect(await producer.queue('acme').getJobCountByTypes('waiting', 'prioritized', 'active')).toBe(0);
  });

  it('cancels a batch whose input is an invalid stream item, and says why', async () => {
    await startWorker(2);
    async function* input() {
      yield 'fine';
      yield 'also fine';
      yield 42; // not a text
      yield 'never read';
    }
    const batch = await producer.enqueueBatch({
      account: 'acme',
      task: 'feature-extraction',
      model: EMBEDDER,
      items: input(),
    });
    await expect(batch.enqueued()).rejects.toThrow(/batch item 2.*items\.2/);
    await expect(batch.results({ timeoutMs: 10_000 })).rejects.toThrow(/input stopped/);
    const state = await admin.hget(
      batchStateKey(stack.prefix, batch.account, batch.id),
      BATCH_FIELDS.cancelRequested,
    );
    expect(state).toBe('1');
  });

  it('completes an empty batch at once', async () => {
    await startWorker(2);
    const batch = await producer.enqueueBatch({
      account: 'acme',
      task: 'text-classification',
      model: EMBEDDER,
      items: [],
    });
    expect(await batch.enqueued()).toEqual({ items: 0, children: 0 });
    expect(await batch.results({ timeoutMs: 5_000 })).toEqual([]);
    const parent = await parentOf(batch, 'completed');
    expect(parent.job?.returnvalue).toMatchObject({
      total: 0,
      ok: 0,
      failed: 0,
      cancelled: 0,
      sealed: 'sealed',
    });
    await parent.close();
  });

  it('rejects an invalid array before anything reaches Redis', async () => {
    await expect(
      producer.enqueueBatch({
        account: 'acme',
        task: 'feature-extraction',
        model: EMBEDDER,
        items: ['ok', ''],
      }),
    ).rejects.toThrow(/items\.1/);
    await expect(
      producer.enqueueBatch({
        account: 'acme',
        task: 'text-classification',
        model: EMBEDDER,
        items: ['a'],
        coalesce: 4,
      }),
    ).rejects.toThrow(/coalesce/);
    expect(await admin.keys(`${stack.prefix}:*`)).toEqual([]);
  });
});
