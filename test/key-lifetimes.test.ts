import type { AccountConfigInput } from '@hfq/shared';
import { describe, expect, it } from 'vitest';
import { embedJob } from './support/jobs.js';
import { keysUnder } from './support/redis.js';
import { startStack } from './support/stack.js';

const HF = 'hf_test_lifetimes_0123456789abcdef';
const HF_BETA = 'hf_test_lifetimes_beta_0123456789';
const KEY = 'tg-test-lifetimes-0123456789';

/**
 * Keys that are permanent by design (README, 'Permanent keys'): BullMQ's own keys of
 * an account's queues (the queue's, for as long as the queue exists: its jobs are removed by
 * retention, the rest by `queue.obliterate()`), and an operator's `hfq limit` override and
 * `hfq queue pause`, which must never expire by themselves. Every other key must carry a TTL.
 */
function permanentByDesign(prefix: string): RegExp[] {
  return [
    new RegExp(`^${prefix}:(account|batch)-[^:]+:`),
    new RegExp(`^${prefix}:hfq:domain:[^:]+:override$`),
    new RegExp(`^${prefix}:hfq:operator-pause:[^:]+$`),
  ];
}

describe('key lifetimes', () => {
  it('after a mixed workload (router, 429s, 402 failover, a hold, a batch, hfq limit) every key has a TTL or is permanent by design', async () => {
    const acme: AccountConfigInput = {
      id: 'acme',
      tier: 'pro',
      hfToken: HF,
      limit: { max: 200, durationMs: 1000 },
      providerKeys: { together: { key: KEY, limits: [{ max: 200, durationMs: 1000 }] } },
      fallbackProviders: ['together'],
      monthlyBudgetUsd: 1,
    };
    const beta: AccountConfigInput = { id: 'beta', tier: 'free', hfToken: HF_BETA };
    const stack = await startStack({
      label: 'kl',
      sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 1, maxMs: 3, perItemMs: 0 } },
      tokens: {
        [HF]: { label: 'hf', credits: { balanceUsd: 0.002, costPerRequestUsd: 0.0001 } },
        [HF_BETA]: { label: 'beta', credits: { balanceUsd: 0, costPerRequestUsd: 0.0001 } },
        [KEY]: { label: 'key' },
      },
      accounts: [acme, beta],
    });
    const { sim, prefix } = stack;
    sim.script(HF, [{ status: 429, retryAfter: 1 }, { status: 429 }]);
    await stack.startWorker({ concurrency: 4, holdCheckMs: 100 });
    const producer = stack.producer;
    const admin = stack.admin;

    const handles = await producer.enqueueMany(Array.from({ length: 60 }, (_, i) => embedJob(i)));
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
    expect(results.some((r) => r.route === 'hf-router')).toBe(true);
    expect(results.some((r) => r.route === 'provider-key')).toBe(true);
    expect(sim.received({ route: 'router', status: 429 })).toBe(2);
    expect(sim.received({ route: 'router', status: 402 })).toBeGreaterThan(0);

    const batch = await producer.enqueueBatch({
      account: 'acme',
      task: 'feature-extraction',
      model: 'sentence-transformers/all-MiniLM-L6-v2',
      items: Array.from({ length: 40 }, (_, i) => `item ${i}`),
      coalesce: 8,
    });
    expect(await batch.results({ timeoutMs: 60_000 })).toHaveLength(40);

    // beta has no key and no credits: its queue holds; then the operator resets it.
    await producer.enqueue(embedJob(1, 'beta'));
    await expect.poll(() => producer.queue('beta').isPaused(), { timeout: 10_000 }).toBe(true);
    await admin.setLimit('acme', 150);

    const redis = stack.redis();
    const permanent = permanentByDesign(prefix);
    const keys = await keysUnder(redis, prefix);
    const hfqKeys = keys.filter((k) => k.startsWith(`${prefix}:hfq:`));
    expect(hfqKeys.some((k) => k.includes(':credits:'))).toBe(true);
    expect(hfqKeys.some((k) => k.includes(':spend:'))).toBe(true);
    expect(hfqKeys.some((k) => k.includes(':hold:'))).toBe(true);
    expect(hfqKeys.some((k) => k.includes(':batch:'))).toBe(true);
    const forever: string[] = [];
    for (const key of keys) {
      if (permanent.some((re) => re.test(key))) continue;
      if ((await redis.pttl(key)) === -1) forever.push(key.slice(prefix.length + 1));
    }
    expect(forever, 'keys with no TTL that are not permanent by design').toEqual([]);
  });
});
