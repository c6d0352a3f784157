import { createProducer } from '@hfq/producer';
import { type AccountConfigInput, createLogger, type Job } from '@hfq/shared';
import { type Sim, startSim } from '@hfq/sim';
import { createAdmin, createWorker, DEFAULT_PRICES, estimateCost } from '@hfq/worker';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { adminRedis, expectNoClientsLeft, redisUrl, testPrefix } from './support/redis.js';
import { upstreamOf } from './support/stack.js';

const HF = 'hf_test_overshoot_0123456789abcdef';
const KEY = 'tg-test-overshoot-0123456789';
const embed = (i: number): Job => ({
  account: 'acme',
  task: 'feature-extraction',
  model: 'sentence-transformers/all-MiniLM-L6-v2',
  inputs: `text ${i}`,
});

let sim: Sim;
let prefix: string;
const cleanups: (() => unknown)[] = [];

beforeEach(async () => {
  prefix = testPrefix('bo');
  sim = await startSim({ latency: { baseMs: 0, jitterMs: 0, minMs: 1, maxMs: 3, perItemMs: 0 } });
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await sim.close();
  const admin = adminRedis();
  await expectNoClientsLeft(admin, prefix);
  await admin.quit();
});

describe('budget overshoot', () => {
  it('stays within the documented bound ((workers × concurrency + workers) × the largest request cost), several workers racing', async () => {
    const perRequest = estimateCost(DEFAULT_PRICES, embed(0), 'hf-inference', [[0.1, 0.2]]);
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
    sim.setToken(HF, { label: 'hf' });
    sim.setToken(KEY, { label: 'key' });
    const workers = 3;
    const concurrency = 4;
    for (let i = 0; i < workers; i += 1) {
      const w = await createWorker({
        connection: redisUrl(),
        prefix,
        accounts: [account],
        upstream: upstreamOf(sim),
        concurrency,
        logger: createLogger({ level: 'silent' }),
      });
      cleanups.push(() => w.close());
    }
    const producer = createProducer({ connection: redisUrl(), prefix });
    cleanups.push(() => producer.close());
    const handles = await producer.enqueueMany(Array.from({ length: 600 }, (_, i) => embed(i)));
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
    const routerUsd = results.filter((r) => r.route === 'hf-router').reduce((sum, r) => sum + r.costUsd, 0);
    expect(routerUsd).toBeGreaterThanOrEqual(budgetUsd);
    // README, 'Budget overshoot': the requests in flight when the ledger reached the budget, plus
    // at most one write's worth per worker still on its way to the ledger.
    const bound = (workers * concurrency + workers) * perRequest;
    expect(routerUsd - budgetUsd).toBeLessThanOrEqual(bound + 1e-12);
    // The ledger holds every cent the results say was spent (nothing lost in the recorder).
    const admin = createAdmin({ connection: redisUrl(), prefix, accounts: [account] });
    cleanups.push(() => admin.close());
    await expect
      .poll(async () => (await admin.status())[0]?.spend.hfRouterUsd ?? 0)
      .toBeCloseTo(routerUsd, 9);
  });
});
