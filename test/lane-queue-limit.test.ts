import { describe, expect, it, vi } from 'vitest';
import { embedJob } from './support/jobs.js';
import { startStack } from './support/stack.js';

/**
 * BullMQ's coarse limiter (the queue's meta `max`): it costs three commands per job start in
 * BullMQ's scripts, so a lane's queue gets it the first time the lane waits (lane-queue-limit.ts).
 * A lane far under its limit carries none; a lane that has to wait carries its configured limit,
 * which its wait (`queue.rateLimit`) needs to hold the queue at all.
 */

const FAST = {
  id: 'fast',
  tier: 'pro' as const,
  hfToken: 'hf_qlimit_fast_0123456789',
  limit: { max: 1000, durationMs: 1000 },
};
const SLOW = {
  id: 'slow',
  tier: 'pro' as const,
  hfToken: 'hf_qlimit_slow_0123456789',
  limit: { max: 1, durationMs: 1000 },
};

describe("a lane's coarse BullMQ limit", () => {
  it('is absent while the lane never waits, and set to the configured limit at its first wait', async () => {
    const stack = await startStack({ label: 'qlimit', accounts: [FAST, SLOW] });
    // 16 jobs at once against 1/s: 10 hold a slot within the longest reservation (10 s), the rest wait in the queue.
    await stack.startWorker({ concurrency: 16 });
    const fast = await stack.producer.enqueueMany(Array.from({ length: 8 }, (_, i) => embedJob(i, 'fast')));
    await Promise.all(fast.map((h) => h.result({ timeoutMs: 20_000 })));
    expect(await stack.producer.queue('fast').getGlobalRateLimit()).toBeNull();

    const slowQueue = stack.producer.queue('slow');
    expect(await slowQueue.getGlobalRateLimit()).toBeNull();
    await stack.producer.enqueueMany(Array.from({ length: 16 }, (_, i) => embedJob(i, 'slow')));
    await vi.waitFor(
      async () => expect(await slowQueue.getGlobalRateLimit()).toEqual({ max: 1, duration: 1000 }),
      {
        timeout: 15_000,
        interval: 200,
      },
    );
    // The wait holds jobs in Redis (waiting), not in the worker (active): at most the 16 a worker runs.
    const counts = await slowQueue.getJobCounts('active', 'waiting', 'completed');
    expect((counts.active ?? 0) + (counts.completed ?? 0) + (counts.waiting ?? 0)).toBe(16);
    expect(counts.waiting ?? 0).toBeGreaterThan(0);
    await stack.stop();
  });
});
