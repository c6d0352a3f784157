import { Writable } from 'node:stream';
import { NoHeadroomError } from '@hfq/producer';
import { createLogger, type Job } from '@hfq/shared';
import { CreditState, LEDGER_FIELDS } from '@hfq/shared/internal';
import { createHealthServer } from '@hfq/worker';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SpawnedRedis } from '../packages/cli/src/local-redis.js';
import { SpendRecorder } from '../packages/worker/src/spend-recorder.js';
import { ownRedis } from './support/faults.js';
import { type Stack, startStack } from './support/stack.js';

const HF = 'hf_test_full_0123456789abcdef';
const logger = createLogger({ level: 'silent' });
/** A job of about 2 KB, as in the report of a full Redis. */
const job = (i: number): Job => ({
  account: 'acme',
  task: 'feature-extraction',
  model: 'sentence-transformers/all-MiniLM-L6-v2',
  inputs: `${i} ${'x'.repeat(2_000)}`,
});

let server: SpawnedRedis;
let admin: Redis;
let stack: Stack;

beforeAll(async () => {
  server = await ownRedis();
  admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  await admin.quit();
  await server.stop();
});
beforeEach(async () => {
  await admin.config('SET', 'maxmemory', '0');
  await admin.flushall();
  stack = await startStack({
    label: 'rf',
    redisUrl: server.url,
    sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 1, maxMs: 3, perItemMs: 0 } },
    tokens: { [HF]: { label: 'hf' } },
  });
  // Runs after everything the test started is closed: Redis takes writes again.
  stack.defer(() => admin.config('SET', 'maxmemory', '0'));
});

async function usedMemory(): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await admin.info('memory'))?.[1]);
}

/** Fill Redis with filler keys until it refuses a write (maxmemory reached, noeviction). */
async function fillUntilFull(): Promise<void> {
  await admin.config('SET', 'maxmemory', String((await usedMemory()) + 2 * 1_048_576));
  // Large fillers first, then smaller ones: Redis refuses a write only once used memory is past
  // maxmemory, so the last accepted small write takes it past, and every later write is refused.
  let i = 0;
  for (const size of [64 * 1024, 1024, 16]) {
    for (;;) {
      i += 1;
      try {
        await admin.set(`filler:${i}`, 'f'.repeat(size));
      } catch (err) {
        expect((err as Error).message).toMatch(/OOM/);
        break;
      }
    }
  }
  // Then the mark goes half a megabyte below what is used: what Redis frees after the fill
  // (client buffers, keys that expire) must not make room for the write a test expects refused
  // (a full CI run once saw a two-job add accepted here).
  await admin.config('SET', 'maxmemory', String(Math.max(1_048_576, (await usedMemory()) - 512 * 1024)));
}

function startWorker(log = logger) {
  return stack.startWorker({
    accounts: [{ id: 'acme', tier: 'pro', hfToken: HF, limit: { max: 500, durationMs: 1000 } }],
    concurrency: 8,
    logger: log,
    holdCheckMs: 100,
  });
}

describe('a full Redis', () => {
  it('the producer refuses new work above its high-water mark, saying why, and the workers drain what it took', async () => {
    const producer = stack.newProducer({ headroom: { maxMemoryRatio: 0.5, refreshMs: 0 } });
    // One job first, so that BullMQ's scripts (Redis counts its script cache as used memory) and
    // the queue's registry entry are in before the mark is set from what Redis uses.
    const handles = [await producer.enqueue(job(-1))];
    await admin.config('SET', 'maxmemory', String(2 * (await usedMemory()) + 1_048_576));
    let refusal: unknown;
    for (let i = 0; i < 10_000 && refusal === undefined; i += 1) {
      try {
        handles.push(await producer.enqueue(job(i)));
      } catch (err) {
        refusal = err;
      }
    }
    expect(refusal).toBeInstanceOf(NoHeadroomError);
    expect((refusal as Error).message).toMatch(/high-water mark \(50% of maxmemory\).*MB used of maxmemory/);
    expect(handles.length).toBeGreaterThan(20);
    await startWorker();
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
    expect(results).toHaveLength(handles.length);
  });

  it('default options, a fast enqueueMany(100) loop of 2 KB jobs into 12 MB: stops at the mark with a memory error, every accepted job completes, new work is accepted after the drain', async () => {
    const producer = stack.newProducer();
    await admin.config('SET', 'maxmemory', String(12 * 1_048_576));
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    const mark = 0.5 * 12 * 1_048_576;
    const handles: Awaited<ReturnType<typeof producer.enqueueMany>> = [];
    let refusal: unknown;
    let peak = 0;
    for (let round = 0; round < 200 && refusal === undefined; round += 1) {
      try {
        handles.push(
          ...(await producer.enqueueMany(Array.from({ length: 100 }, (_, i) => job(round * 100 + i)))),
        );
      } catch (err) {
        refusal = err;
      }
      peak = Math.max(peak, await usedMemory());
    }
    expect(refusal).toBeInstanceOf(NoHeadroomError);
    expect((refusal as Error).message).toMatch(
      /high-water mark \(50% of maxmemory\).*MB used of maxmemory 12\.0 MB/,
    );
    expect(peak).toBeLessThanOrEqual(mark);
    expect(handles.length).toBeGreaterThan(500);
    // Two workers drain every accepted job on the Redis the producer left at its mark.
    await startWorker();
    await startWorker();
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 120_000 })));
    expect(results).toHaveLength(handles.length);
    expect(await usedMemory()).toBeLessThan(12 * 1_048_576);
    // After the drain, the producer takes new work again.
    const after = await producer.enqueueMany(Array.from({ length: 100 }, (_, i) => job(1_000_000 + i)));
    expect(await Promise.all(after.map((h) => h.result({ timeoutMs: 60_000 })))).toHaveLength(100);
  });

  it('an OOM inside the add transaction reaches the caller as NoHeadroomError with the figures, not EXECABORT', async () => {
    // A reading kept for a minute: another client fills Redis behind the producer's back.
    const producer = stack.newProducer({ headroom: { refreshMs: 60_000, maxMemoryRatio: 1 } });
    await producer.enqueue(job(-1));
    await fillUntilFull();
    for (const add of [() => producer.enqueueMany([job(1), job(2)]), () => producer.enqueue(job(3))]) {
      const error = await add().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NoHeadroomError);
      expect((error as Error).message).toMatch(
        /^Redis refused the add: it is out of memory \(maxmemory reached, writes refused\): .* MB used of maxmemory .*Nothing was added/,
      );
      expect((error as Error).message).not.toMatch(/EXECABORT/);
      expect((error as NoHeadroomError).memory?.maxBytes).toBeGreaterThan(0);
    }
    expect(await producer.queue('acme').getJobCounts('waiting')).toEqual({ waiting: 1 });
  });

  it('a worker started on a full Redis says so (log, /readyz, status), keeps trying, and drains once there is room', async () => {
    const producer = stack.producer;
    const handles = await producer.enqueueMany(Array.from({ length: 20 }, (_, i) => job(i)));
    await fillUntilFull();
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const w = await startWorker(createLogger({ level: 'info', destination }));
    const health = await createHealthServer({
      worker: w,
      connection: server.url,
      prefix: stack.prefix,
      accounts: [{ id: 'acme', tier: 'pro', hfToken: HF }],
      port: 0,
      host: '127.0.0.1',
    });
    stack.defer(() => health.close());
    const full = await fetch(`${health.url}/readyz`);
    expect(full.status).toBe(503);
    expect(((await full.json()) as { checks: { redis: string } }).checks.redis).toMatch(/^full: .*maxmemory/);
    expect(await producer.queue('acme').getJobCounts('completed')).toEqual({ completed: 0 });
    const ops = stack.newAdmin([{ id: 'acme', tier: 'pro', hfToken: HF }]);
    expect(lines.some((l) => l.includes('Redis is full (maxmemory reached, writes refused)'))).toBe(true);
    await expect(ops.status()).rejects.toThrow(/^Redis is full: .* used of maxmemory/);
    await admin.config('SET', 'maxmemory', '0');
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
    expect(results).toHaveLength(20);
    await expect
      .poll(async () => (await fetch(`${health.url}/readyz`)).status, { timeout: 10_000 })
      .toBe(200);
  });

  it('spend recorded while Redis refuses writes is kept, and written at close once there is room', async () => {
    const redis = new Redis(server.url, {
      maxRetriesPerRequest: null,
      connectionName: `${stack.prefix}:spend`,
    });
    stack.defer(() => redis.quit());
    const credits = new CreditState(redis, stack.prefix);
    const now = () => Date.UTC(2026, 10, 15);
    await fillUntilFull();
    const recorder = new SpendRecorder(credits, now, { retryMs: 50, closeTimeoutMs: 60_000 });
    recorder.record('account:acme', 'hf-router', 0.25);
    recorder.record('account:acme', 'hf-router', 0.5);
    await recorder.flush();
    expect(recorder.unwritten().get('account:acme')).toMatchObject({ [LEDGER_FIELDS.hfRouterUsd]: 0.75 });
    let closed = false;
    const closing = recorder.close().then(() => {
      closed = true;
    });
    // close() is still trying after several failed writes: nothing was dropped.
    await recorder.flush();
    await recorder.flush();
    expect(closed).toBe(false);
    await admin.config('SET', 'maxmemory', '0');
    await closing;
    const spend = await credits.spend('account:acme', now());
    expect(spend).toMatchObject({ hfRouterUsd: 0.75, hfRouterRequests: 2 });
  });
});
