import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createProducer } from '@hfq/producer';
import { batchStateKey } from '@hfq/shared/internal';
import { describe, expect, it } from 'vitest';
import {
  adminRedis,
  expectNoClientsLeft,
  keysUnder,
  redisUrl,
  testPrefix,
} from '../../../test/support/redis.js';

/**
 * A very large batch from a stream (see docs/architecture.md, "Batches are flows"): enqueuing 100,000 items keeps the producer's memory
 * flat, because the input is read and added a chunk at a time. No worker runs: this is about the
 * enqueue, not the processing. Two measures: the heap sampled during the enqueue (garbage
 * included, so bounded loosely), and the heap still held after a full collection once it is done
 * (a producer keeping every item, or leaking per item, would hold tens of MB).
 */

const ITEMS = 100_000;
const MB = 1024 * 1024;

function* lines(n: number): Generator<string> {
  for (let i = 0; i < n; i++) {
    yield `review ${i}: the plot was ${i % 7 === 0 ? 'thin' : 'gripping'} and the cast ${i % 3 === 0 ? 'wooden' : 'superb'}`;
  }
}

describe('batch enqueue memory', () => {
  it('adds a 100,000-item stream with bounded producer heap growth', async () => {
    const prefix = testPrefix('bmem');
    const admin = adminRedis();
    const producer = createProducer({ connection: redisUrl(), prefix });
    // The test runner has no --expose-gc: get the collector at run time.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    try {
      gc();
      const baseline = process.memoryUsage().heapUsed;
      let peak = baseline;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().heapUsed);
      }, 5);
      const started = performance.now();
      const batch = await producer.enqueueBatch({
        account: 'acme',
        task: 'text-classification',
        model: 'distilbert/distilbert-base-uncased-finetuned-sst-2-english',
        items: lines(ITEMS),
      });
      const enqueued = await batch.enqueued();
      const seconds = (performance.now() - started) / 1000;
      clearInterval(sampler);
      peak = Math.max(peak, process.memoryUsage().heapUsed);
      gc();
      const heldMb = (process.memoryUsage().heapUsed - baseline) / MB;
      const growthMb = (peak - baseline) / MB;
      console.log(
        `enqueued ${ITEMS} items in ${seconds.toFixed(1)} s: peak heap growth ${growthMb.toFixed(1)} MB, ` +
          `held after GC ${heldMb.toFixed(1)} MB`,
      );

      expect(enqueued).toEqual({ items: ITEMS, children: ITEMS });
      expect(await producer.queue('acme').getPrioritizedCount()).toBe(ITEMS);
      expect(await admin.llen(batchStateKey(prefix, batch.account, batch.id, 'layout'))).toBe(ITEMS);
      expect((await batch.progress()).total).toBe(ITEMS);
      expect(growthMb).toBeLessThan(150);
      expect(heldMb).toBeLessThan(16);
    } finally {
      await producer.close();
      // 100,000 jobs: delete the test's keys directly rather than through BullMQ, for speed.
      const keys = await keysUnder(admin, prefix);
      for (let i = 0; i < keys.length; i += 5_000) await admin.unlink(...keys.slice(i, i + 5_000));
      await expectNoClientsLeft(admin, prefix);
      await admin.quit();
    }
  });
});
