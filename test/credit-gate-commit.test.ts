import { describe, expect, it } from 'vitest';
import { embedJob } from './support/jobs.js';
import { startStack } from './support/stack.js';

/**
 * After the first 402, the router receives no request that was not already in flight: a permit
 * reserved before the credit gate closed is refused when it commits, and its job fails over.
 */

const HF = 'hf_test_gate_commit_0123456789';
const KEY = 'tg-test-gate-commit-0123456789';

describe('the credit gate at commit', () => {
  it('after the first 402 the router gets no request that was not already in flight', async () => {
    // Credits for 4 requests; the router paced at 5/s, so with 8 jobs running, permits are
    // reserved up to 1.6 s ahead when the 402 comes.
    const stack = await startStack({
      label: 'gc',
      sim: { latency: { baseMs: 0, jitterMs: 0, perItemMs: 0 } },
      tokens: {
        [HF]: { label: 'hf', credits: { balanceUsd: 0.0004, costPerRequestUsd: 0.0001 } },
        [KEY]: { label: 'key' },
      },
      accounts: [
        {
          id: 'acme',
          tier: 'pro',
          hfToken: HF,
          limit: { max: 5, durationMs: 1000 },
          providerKeys: { together: { key: KEY, limits: [{ max: 100, durationMs: 1000 }] } },
          fallbackProviders: ['together'],
        },
      ],
      workers: 1,
      worker: { concurrency: 8 },
    });
    const { sim, producer } = stack;
    const handles = await producer.enqueueMany(Array.from({ length: 20 }, (_, i) => embedJob(i)));
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
    expect(results).toHaveLength(20);
    expect(results.filter((r) => r.route === 'provider-key').length).toBeGreaterThan(0);

    const router = sim.requests({ route: 'router' }).sort((a, b) => a.t - b.t);
    const first402 = router.find((r) => r.status === 402);
    expect(first402).toBeDefined();
    const t402 = (first402 as { t: number; durationMs: number }).t;
    // Answered at once (no latency): anything arriving well after the 402 was sent after it.
    // Requests in flight when it came arrive within a few ms; 500 ms leaves room for a busy machine,
    // while the reserved permits (200 ms apart) would arrive over the next 1.6 s.
    const late = router.filter((r) => r.t > t402 + 500);
    expect(late).toEqual([]);
  });
});
