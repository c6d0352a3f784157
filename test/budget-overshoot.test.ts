import type { AccountConfigInput } from '@hfq/shared';
import { DEFAULT_PRICES, estimateCost } from '@hfq/worker';
import { describe, expect, it } from 'vitest';
import { embedJob } from './support/jobs.js';
import { startStack } from './support/stack.js';

const HF = 'hf_test_overshoot_0123456789abcdef';
const KEY = 'tg-test-overshoot-0123456789';

describe('budget overshoot', () => {
  it('stays within the documented bound ((workers × concurrency + workers) × the largest request cost), several workers racing', async () => {
    const perRequest = estimateCost(DEFAULT_PRICES, embedJob(0), 'hf-inference', [[0.1, 0.2]]);
    const budgetUsd = 40 * perRequest;
    const account: AccountConfigInput = {
      id: 'acme',
      tier: 'pro',
      hfToken: HF,
      limit: { max: 2000, durationMs: 1000 },
      providerKeys: { together: { key: KEY, limits: [{ max: 2000, durationMs: 1000 }] } },
      fallbackProviders: ['together'],
      monthlyBudgetUsd: budgetUsd,
    };
    const workers = 3;
    const concurrency = 4;
    const stack = await startStack({
      label: 'bo',
      sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 1, maxMs: 3, perItemMs: 0 } },
      tokens: { [HF]: { label: 'hf' }, [KEY]: { label: 'key' } },
      accounts: [account],
      workers,
      worker: { concurrency },
    });
    const producer = stack.producer;
    const handles = await producer.enqueueMany(Array.from({ length: 600 }, (_, i) => embedJob(i)));
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
    const routerUsd = results.filter((r) => r.route === 'hf-router').reduce((sum, r) => sum + r.costUsd, 0);
    expect(routerUsd).toBeGreaterThanOrEqual(budgetUsd);
    // README, 'Budget overshoot': the requests in flight when the ledger reached the budget, plus
    // at most one write's worth per worker still on its way to the ledger.
    const bound = (workers * concurrency + workers) * perRequest;
    expect(routerUsd - budgetUsd).toBeLessThanOrEqual(bound + 1e-12);
    // The ledger holds every cent the results say was spent (nothing lost in the recorder).
    const admin = stack.admin;
    await expect
      .poll(async () => (await admin.status())[0]?.spend.hfRouterUsd ?? 0)
      .toBeCloseTo(routerUsd, 9);
  });
});
