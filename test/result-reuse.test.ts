import { contentJobId, type Job } from '@hfq/shared';
import { ResultLedger } from '@hfq/shared/internal';
import type { AccountStatus } from '@hfq/worker';
import { spendNotes } from '@hfq/worker/internal';
import { beforeEach, describe, expect, it } from 'vitest';
import { embedJob } from './support/jobs.js';
import { type Stack, startStack } from './support/stack.js';

const HF = 'hf_test_reuse_0123456789abcdef';
const account = (resultReuse: { ttlMs: number; maxBytes: number }) => ({
  id: 'acme',
  tier: 'pro' as const,
  hfToken: HF,
  limit: { max: 200, durationMs: 1000 },
  resultReuse,
});

let stack: Stack;

beforeEach(async () => {
  stack = await startStack({
    label: 'rr',
    sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 1, maxMs: 3, perItemMs: 0 } },
    tokens: { [HF]: { label: 'hf' } },
  });
});

describe('result reuse', () => {
  it('answers the same request from the ledger within the TTL, with no upstream request, and counts what it saved', async () => {
    const acme = account({ ttlMs: 60_000, maxBytes: 1_048_576 });
    await stack.startWorker({ accounts: [acme], concurrency: 4 });
    const jobs = Array.from({ length: 10 }, (_, i) => embedJob(i));
    const first = await stack.producer.enqueueMany(jobs);
    const paid = await Promise.all(first.map((h) => h.result({ timeoutMs: 30_000 })));
    expect(stack.sim.received({ route: 'router' })).toBe(10);
    // New jobs (another caller key) asking for the same requests: answered from the ledger.
    const again = await stack.producer.enqueueMany(
      jobs.map((job) => ({ job, options: { contentKey: 'run-2' } })),
    );
    expect(again.map((h) => h.id)).not.toEqual(first.map((h) => h.id));
    const reused = await Promise.all(again.map((h) => h.result({ timeoutMs: 30_000 })));
    expect(stack.sim.received({ route: 'router' })).toBe(10);
    expect(reused.map((r) => r.output)).toEqual(paid.map((r) => r.output));
    expect(reused.every((r) => r.reused === true && r.costUsd === 0 && r.attempts === 0)).toBe(true);
    const saved = paid.reduce((sum, r) => sum + r.costUsd, 0);
    const admin = stack.newAdmin([acme]);
    await expect.poll(async () => (await admin.status())[0]?.spend.reusedRequests).toBe(10);
    const [status] = await admin.status();
    expect(status?.spend.reusedUsd).toBeCloseTo(saved, 12);
    expect(status?.spend.hfRouterRequests).toBe(10);
    expect(spendNotes(status as AccountStatus, (usd) => `$${usd.toFixed(6)}`)).toContain(
      `10 results reused from the ledger this month, ≈ $${saved.toFixed(6)} saved`,
    );
    // unique: false is new work: never answered from the ledger.
    const fresh = await stack.producer.enqueue(embedJob(0), { unique: false });
    expect((await fresh.result({ timeoutMs: 30_000 })).reused).toBeUndefined();
    expect(stack.sim.received({ route: 'router' })).toBe(11);
  });

  it('forgets a result after the TTL: the same request is paid again', async () => {
    const acme = account({ ttlMs: 1_000, maxBytes: 1_048_576 });
    await stack.startWorker({ accounts: [acme], concurrency: 1 });
    await (await stack.producer.enqueue(embedJob(1))).result({ timeoutMs: 30_000 });
    const ledger = new ResultLedger(stack.redis(), stack.prefix);
    const id = contentJobId(embedJob(1));
    expect(await ledger.read('acme', id, acme.resultReuse)).toBeDefined();
    // The TTL is Redis time passing: nothing to await but the clock.
    await expect
      .poll(() => ledger.read('acme', id, acme.resultReuse), { timeout: 5_000, interval: 100 })
      .toBeUndefined();
    const again = await stack.producer.enqueue(embedJob(1), { contentKey: 'later' });
    expect((await again.result({ timeoutMs: 30_000 })).reused).toBeUndefined();
    expect(stack.sim.received({ route: 'router' })).toBe(2);
  });

  it('stays within its memory bound, evicting the oldest results first; keys expire', async () => {
    const acme = account({ ttlMs: 60_000, maxBytes: 2_048 });
    await stack.startWorker({ accounts: [acme], concurrency: 1 });
    const ledger = new ResultLedger(stack.redis(), stack.prefix);
    for (let i = 0; i < 30; i += 1)
      await (await stack.producer.enqueue(embedJob(i))).result({ timeoutMs: 30_000 });
    const size = await ledger.size('acme');
    expect(size.bytes).toBeLessThanOrEqual(2_048);
    expect(size.results).toBeGreaterThan(2);
    expect(size.results).toBeLessThan(30);
    // The newest are kept, the oldest went.
    expect(await ledger.read('acme', contentJobId(embedJob(29)), acme.resultReuse)).toBeDefined();
    expect(await ledger.read('acme', contentJobId(embedJob(0)), acme.resultReuse)).toBeUndefined();
    // The size counter matches what the hash holds.
    const [h, , s] = ledger.keys('acme');
    const values = Object.values(await stack.redis().hgetall(h));
    expect(values.reduce((sum, v) => sum + Buffer.byteLength(v), 0)).toBe(Number(await stack.redis().get(s)));
    for (const key of ledger.keys('acme')) expect(await stack.redis().pttl(key)).toBeGreaterThan(0);
  });

  it('never stores nor answers a sampling job', async () => {
    const acme = account({ ttlMs: 60_000, maxBytes: 1_048_576 });
    await stack.startWorker({ accounts: [acme], concurrency: 1 });
    const sampled: Job = {
      account: 'acme',
      task: 'chat-completion',
      model: 'meta-llama/Llama-3.1-8B-Instruct',
      provider: 'together',
      messages: [{ role: 'user', content: 'a poem' }],
      parameters: { max_tokens: 8, temperature: 0.9 },
    };
    for (let i = 0; i < 2; i += 1) {
      expect(
        (await (await stack.producer.enqueue(sampled)).result({ timeoutMs: 30_000 })).reused,
      ).toBeUndefined();
    }
    expect(stack.sim.received({ route: 'router' })).toBe(2);
    expect((await new ResultLedger(stack.redis(), stack.prefix).size('acme')).results).toBe(0);
  });
});
