import type { Producer } from '@hfq/producer';
import type { AccountConfigInput } from '@hfq/shared';
import { beforeEach, describe, expect, it } from 'vitest';
import { embedJob } from './support/jobs.js';
import { type Stack, startStack } from './support/stack.js';

const HF = 'hf_test_credits_0123456789abcdef';
const KEY = 'tg-test-key-0123456789';

let stack: Stack;

beforeEach(async () => {
  stack = await startStack({
    label: 'cr',
    sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 5, maxMs: 20, perItemMs: 0 } },
  });
});

function producer(): Producer {
  return stack.newProducer();
}

function worker(accounts: AccountConfigInput[], extra: { now?: () => number; holdCheckMs?: number } = {}) {
  return stack.startWorker({
    accounts,
    concurrency: 8,
    holdCheckMs: extra.holdCheckMs ?? 200,
    ...(extra.now ? { now: extra.now } : {}),
  });
}

const withKey = {
  id: 'acme',
  tier: 'pro' as const,
  hfToken: HF,
  limit: { max: 100, durationMs: 1000 },
  providerKeys: { together: { key: KEY, limits: [{ max: 100, durationMs: 1000 }] } },
  fallbackProviders: ['together'],
};

describe('failover to the provider key', () => {
  it('runs 500 jobs with credits for ~50: none failed, the rest through the key, no leak', async () => {
    stack.sim.setToken(HF, { label: 'hf', credits: { balanceUsd: 0.005, costPerRequestUsd: 0.0001 } });
    stack.sim.setToken(KEY, { label: 'key' });
    await stack.startWorkerProcesses(2, { accounts: [withKey], concurrency: 8 });

    const p = producer();
    const handles = await p.enqueueMany(Array.from({ length: 500 }, (_, i) => embedJob(i)));
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 120_000 })));
    expect(results).toHaveLength(500);
    const viaRouter = results.filter((r) => r.route === 'hf-router').length;
    expect(viaRouter).toBeGreaterThanOrEqual(40);
    expect(viaRouter).toBeLessThanOrEqual(50);
    expect(results.filter((r) => r.route === 'provider-key').length).toBe(500 - viaRouter);
    expect(results.every((r) => r.attempts === 1)).toBe(true);
    const counts = await p.queue('acme').getJobCounts('completed', 'failed');
    expect(counts).toEqual({ completed: 500, failed: 0 });

    const router = stack.sim.requests({ route: 'router', tokenLabel: 'hf' });
    const first402 = router.find((r) => r.status === 402);
    expect(first402).toBeDefined();
    const after = router.filter((r) => r.seq > (first402?.seq ?? 0));
    // Only requests already in flight when the first 402 came back: 2 processes × 8.
    expect(after.length).toBeLessThanOrEqual(16);
    expect(stack.sim.stats().headerLeaks).toEqual({ billToAtProvider: 0, hfTokenAtProvider: 0 });
    expect(stack.sim.received({ route: 'provider', tokenLabel: 'key' })).toBe(500 - viaRouter);
  });
});

describe('organisation billing', () => {
  it('sends X-HF-Bill-To on every router call and never to a provider; one 402 fails over the whole org', async () => {
    const other = 'hf_test_credits_other_0123456789';
    stack.sim.setOrg('acme-org', { credits: { balanceUsd: 0.003, costPerRequestUsd: 0.0001 } });
    stack.sim.setToken(HF, { label: 'hf', orgs: ['acme-org'] });
    stack.sim.setToken(other, { label: 'other', orgs: ['acme-org'] });
    stack.sim.setToken(KEY, { label: 'key' });
    const team = { tier: 'team' as const, billTo: 'acme-org', seats: 5 };
    await worker([
      { ...withKey, ...team },
      { ...withKey, ...team, id: 'beta', hfToken: other },
    ]);
    const p = producer();
    const handles = await p.enqueueMany(
      Array.from({ length: 120 }, (_, i) => embedJob(i, i % 2 === 0 ? 'acme' : 'beta')),
    );
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
    expect(results).toHaveLength(120);
    const router = stack.sim.requests({ route: 'router' });
    expect(router.length).toBeGreaterThan(0);
    expect(router.every((r) => r.billTo === 'acme-org')).toBe(true);
    expect(stack.sim.received({ route: 'provider', billTo: true })).toBe(0);
    // The organisation's first 402: after it, neither account sends more than was in flight.
    const first402 = router.find((r) => r.status === 402);
    expect(first402).toBeDefined();
    expect(router.filter((r) => r.seq > (first402?.seq ?? 0)).length).toBeLessThanOrEqual(16);
    expect(results.filter((r, i) => i % 2 === 1 && r.route === 'provider-key').length).toBeGreaterThan(0);
  });
});

describe('no usable key', () => {
  it('holds the queue (nothing failed), resumes after credits reset, and completes', async () => {
    stack.sim.setToken(HF, { label: 'hf', credits: { balanceUsd: 0.0005, costPerRequestUsd: 0.0001 } });
    const account = { id: 'acme', tier: 'pro' as const, hfToken: HF, limit: { max: 50, durationMs: 1000 } };
    await worker([account]);
    const p = producer();
    const handles = await p.enqueueMany(Array.from({ length: 20 }, (_, i) => embedJob(i)));
    const queue = p.queue('acme');
    await expect.poll(() => queue.isPaused(), { timeout: 20_000 }).toBe(true);
    const held = await queue.getJobCounts('completed', 'failed', 'waiting', 'active');
    expect(held.failed).toBe(0);
    expect(held.completed).toBeLessThanOrEqual(5);
    expect((held.completed ?? 0) + (held.waiting ?? 0) + (held.active ?? 0)).toBe(20);

    const admin = stack.newAdmin([account]);
    const [status] = await admin.status();
    expect(status?.route).toBe('holding');
    expect(status?.holdReason).toMatch(/no usable provider key/);
    stack.sim.setToken(HF, { label: 'hf' }); // the operator bought credits
    expect((await admin.resetCredits('acme')).resumed).toBe(true);
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
    expect(results).toHaveLength(20);
    expect(await queue.getJobCounts('failed')).toEqual({ failed: 0 });
  });

  it('keeps a held job waiting across two simulated weeks and resumes at the month rollover', async () => {
    let now = Date.UTC(2026, 10, 10, 12);
    stack.sim.setToken(HF, { label: 'hf', credits: { balanceUsd: 0, costPerRequestUsd: 0.0001 } });
    const account = { id: 'acme', tier: 'free' as const, hfToken: HF, limit: { max: 50, durationMs: 1000 } };
    const w = await worker([account], { now: () => now, holdCheckMs: 100 });
    const p = producer();
    const handle = await p.enqueue(embedJob(1));
    const queue = p.queue('acme');
    await expect.poll(() => queue.isPaused(), { timeout: 10_000 }).toBe(true);
    const before = stack.sim.received({ route: 'router', tokenLabel: 'hf' });
    now += 14 * 86_400_000; // two weeks later: still November
    // A router probe is due: the held job goes once to the router, finds the credits still gone,
    // and the queue holds again; the job has not failed.
    await expect
      .poll(() => stack.sim.received({ route: 'router', tokenLabel: 'hf' }), { timeout: 10_000 })
      .toBe(before + 1);
    await expect.poll(() => queue.isPaused(), { timeout: 10_000 }).toBe(true);
    expect(await w.runtimes.get('acme')?.liftHoldIfClear()).toBe(false);
    expect(await handle.state()).not.toBe('failed');
    stack.sim.setToken(HF, { label: 'hf' }); // December's credits
    now = Date.UTC(2026, 11, 1, 0, 0, 1);
    const result = await handle.result({ timeoutMs: 10_000 });
    expect(result.route).toBe('hf-router');
  });

  it('holds the account on a 401 from the router instead of failing its jobs', async () => {
    stack.sim.setToken(HF, { label: 'hf', revoked: true });
    const account = { id: 'acme', tier: 'pro' as const, hfToken: HF };
    await worker([account]);
    const p = producer();
    await p.enqueueMany(Array.from({ length: 5 }, (_, i) => embedJob(i)));
    const queue = p.queue('acme');
    await expect.poll(() => queue.isPaused(), { timeout: 10_000 }).toBe(true);
    expect(await queue.getJobCounts('failed', 'completed')).toEqual({ failed: 0, completed: 0 });
    const admin = stack.newAdmin([account]);
    const [status] = await admin.status();
    expect(status?.credits.state).toBe('held');
    expect(status?.holdReason).toMatch(/401/);
  });
});

describe('budget', () => {
  it('switches to the key before the upstream 402 when the estimate reaches the budget', async () => {
    stack.sim.setToken(HF, { label: 'hf', credits: { balanceUsd: 1, costPerRequestUsd: 0.0001 } });
    stack.sim.setToken(KEY, { label: 'key' });
    // Each embedding is estimated at $0.000012: the budget lasts about 25 requests.
    await worker([{ ...withKey, monthlyBudgetUsd: 0.0003 }]);
    const p = producer();
    const results = await Promise.all(
      (await p.enqueueMany(Array.from({ length: 150 }, (_, i) => embedJob(i)))).map((h) =>
        h.result({ timeoutMs: 60_000 }),
      ),
    );
    expect(stack.sim.received({ status: 402 })).toBe(0);
    expect(results.filter((r) => r.route === 'provider-key').length).toBeGreaterThan(50);
    const admin = stack.newAdmin([withKey]);
    await expect
      .poll(async () => (await admin.status())[0]?.spend.providerKeyRequests ?? 0)
      .toBeGreaterThan(50);
  });
});
