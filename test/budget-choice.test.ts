import type { AccountConfigInput } from '@hfq/shared';
import { type AccountStatus, DEFAULT_PRICES, type PriceTable } from '@hfq/worker';
import { spendNotes } from '@hfq/worker/internal';
import { beforeEach, describe, expect, it } from 'vitest';
import { embedJob } from './support/jobs.js';
import { type Stack, startStack } from './support/stack.js';

const HF = 'hf_test_budget_0123456789abcdef';
const KEY = 'tg-test-budget-0123456789';
/** Each embedding request estimated at one cent: the free tier's included $0.10 is 10 requests. */
const prices: PriceTable = {
  ...DEFAULT_PRICES,
  requests: { ...DEFAULT_PRICES.requests, 'feature-extraction': { perRequest: 0.01 } },
};
const free: AccountConfigInput = {
  id: 'acme',
  tier: 'free',
  hfToken: HF,
  limit: { max: 200, durationMs: 1000 },
};

let stack: Stack;

beforeEach(async () => {
  stack = await startStack({
    label: 'bc',
    sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 1, maxMs: 3, perItemMs: 0 } },
  });
});

describe('a budget is the user’s choice', () => {
  it('with default settings an account runs past its included credits until the upstream answers 402', async () => {
    // The account bought credits: $0.30 in all, three times the tier's included $0.10.
    stack.sim.setToken(HF, { label: 'hf', credits: { balanceUsd: 0.3, costPerRequestUsd: 0.01 } });
    const started = Date.now();
    await stack.startWorker({ accounts: [free], concurrency: 2, prices, holdCheckMs: 100 });
    const handles = await stack.producer.enqueueMany(Array.from({ length: 40 }, (_, i) => embedJob(i)));
    const admin = stack.newAdmin([free]);
    await expect
      .poll(async () => (await admin.status())[0]?.holdReason, { timeout: 30_000 })
      .toMatch(/402|credits/);
    const [status] = await admin.status();
    expect(status?.counts.completed).toBe(30);
    expect(stack.sim.received({ route: 'router', tokenLabel: 'hf', status: 200 })).toBe(30);
    expect(stack.sim.received({ route: 'router', tokenLabel: 'hf', status: 402 })).toBeGreaterThanOrEqual(1);
    expect(status?.budgetUsd).toBeUndefined();
    expect(status?.includedCreditsUsd).toBe(0.1);
    await expect.poll(async () => (await admin.status())[0]?.spend.hfRouterUsd).toBeCloseTo(0.3, 9);
    const since = (await admin.status())[0]?.spend.payAsYouGoSinceMs;
    expect(since).toBeGreaterThan(0);
    expect(since).toBeGreaterThanOrEqual(started);
    expect(since).toBeLessThanOrEqual(Date.now());
    // What hfq status and the board print beside the numbers.
    const notes = spendNotes((await admin.status())[0] as AccountStatus, (usd) => `$${usd.toFixed(2)}`);
    expect(notes[0]).toMatch(
      /^HF spend \$0\.30 of the tier's included \$0\.10: pay-as-you-go since \d{4}-\d\d-\d\d \d\d:\d\d UTC$/,
    );
    expect(handles).toHaveLength(40);
  });

  it('an explicit budget still holds, and the held message names the setting', async () => {
    stack.sim.setToken(HF, { label: 'hf', credits: { balanceUsd: 1, costPerRequestUsd: 0.01 } });
    const budgeted = { ...free, monthlyBudgetUsd: 0.05 };
    await stack.startWorker({ accounts: [budgeted], concurrency: 1, prices, holdCheckMs: 100 });
    await stack.producer.enqueueMany(Array.from({ length: 20 }, (_, i) => embedJob(i)));
    const admin = stack.newAdmin([budgeted]);
    await expect
      .poll(async () => (await admin.status())[0]?.holdReason, { timeout: 30_000 })
      .toMatch(/reached the monthly budget \$0\.05, set by monthlyBudgetUsd \(HFQ_MONTHLY_BUDGET_USD\)/);
    // One worker, concurrency 1: at most one request past the budget (README, 'Budget overshoot').
    const ok = stack.sim.received({ route: 'router', tokenLabel: 'hf', status: 200 });
    expect(ok).toBeGreaterThanOrEqual(5);
    expect(ok).toBeLessThanOrEqual(7);
    expect(stack.sim.received({ status: 402 })).toBe(0);
  });

  it("afterIncludedCredits: 'provider-keys' switches to the key once the included credits are spent", async () => {
    stack.sim.setToken(HF, { label: 'hf', credits: { balanceUsd: 1, costPerRequestUsd: 0.01 } });
    stack.sim.setToken(KEY, { label: 'key' });
    const keyed: AccountConfigInput = {
      ...free,
      afterIncludedCredits: 'provider-keys',
      providerKeys: { together: { key: KEY, limits: [{ max: 200, durationMs: 1000 }] } },
      fallbackProviders: ['together'],
    };
    await stack.startWorker({ accounts: [keyed], concurrency: 1, prices });
    const handles = await stack.producer.enqueueMany(Array.from({ length: 20 }, (_, i) => embedJob(i)));
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
    const viaRouter = results.filter((r) => r.route === 'hf-router').length;
    expect(viaRouter).toBeGreaterThanOrEqual(10);
    expect(viaRouter).toBeLessThanOrEqual(12);
    expect(results.filter((r) => r.route === 'provider-key')).toHaveLength(20 - viaRouter);
    expect(stack.sim.received({ status: 402 })).toBe(0);
  });
});
