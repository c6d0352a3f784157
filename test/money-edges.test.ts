import { createProducer } from '@hfq/producer';
import { ConfigError } from '@hfq/shared';
import { CreditState, LEDGER_FIELDS, loadConnectionConfig } from '@hfq/shared/internal';
import { createAdmin, createWorker } from '@hfq/worker';
import { beforeEach, describe, expect, it } from 'vitest';
import { SpendRecorder } from '../packages/worker/src/spend-recorder.js';
import { embedJob } from './support/jobs.js';
import { redisUrl } from './support/redis.js';
import { type Stack, startStack } from './support/stack.js';

const HF = 'hf_test_edges_0123456789abcdef';

let stack: Stack;

beforeEach(async () => {
  stack = await startStack({
    label: 'me',
    sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 1, maxMs: 3, perItemMs: 0 } },
    tokens: { [HF]: { label: 'hf' } },
  });
});

describe('money edges', () => {
  it('the router probe of a closed gate honours a budget the user set: a spent budget sends no probe', async () => {
    const now = Date.UTC(2026, 10, 10, 12);
    const account = {
      id: 'acme',
      tier: 'pro' as const,
      hfToken: HF,
      monthlyBudgetUsd: 0.5,
      limit: { max: 50, durationMs: 1000 },
    };
    const credits = new CreditState(stack.redis(), stack.prefix, { probeIntervalMs: 1 });
    await credits.markExhausted('account:acme', 'credits exhausted (402)', now - 60_000);
    await credits.addSpend('account:acme', now, { [LEDGER_FIELDS.hfRouterUsd]: 0.6 });
    await stack.startWorker({ accounts: [account], now: () => now, creditProbeMs: 1, holdCheckMs: 100 });
    const handle = await stack.producer.enqueue(embedJob(1));
    const admin = stack.newAdmin([account]);
    await expect
      .poll(async () => (await admin.status())[0]?.holdReason, { timeout: 10_000 })
      .toMatch(/HF router closed: credits exhausted/);
    // Before the fix the probe went out (and, answered 200, reopened the gate and ran the job).
    expect(stack.sim.received({ route: 'router' })).toBe(0);
    expect(await handle.state()).not.toBe('completed');
  });

  it('spend is dated by the request, not by the write: a request just before midnight stays in its month', async () => {
    const credits = new CreditState(stack.redis(), stack.prefix);
    let now = Date.UTC(2026, 10, 30, 23, 59, 59, 900);
    const recorder = new SpendRecorder(credits, () => now);
    stack.defer(() => recorder.close());
    // The first write is in flight; the second request is coalesced into the next write, which
    // starts after midnight.
    recorder.record('account:acme', 'hf-router', 0.25);
    recorder.record('account:acme', 'hf-router', 0.5);
    now = Date.UTC(2026, 11, 1, 0, 0, 0, 100);
    await recorder.flush();
    expect(await credits.spend('account:acme', Date.UTC(2026, 10, 15))).toMatchObject({
      month: '2026-11',
      hfRouterUsd: 0.75,
      hfRouterRequests: 2,
    });
    expect((await credits.spend('account:acme', Date.UTC(2026, 11, 15))).hfRouterRequests).toBe(0);
  });

  it('releaseProbe after an operator reset leaves no gate key behind (never a key without TTL)', async () => {
    const redis = stack.redis();
    const credits = new CreditState(redis, stack.prefix, { probeIntervalMs: 1 });
    const now = Date.UTC(2026, 10, 10);
    await credits.markExhausted('account:acme', 'credits exhausted (402)', now);
    expect(await credits.takeProbe('account:acme', now + 10)).toBe(true);
    await credits.reset('account:acme'); // hfq credits reset, while the probe waits for its permit
    await credits.releaseProbe('account:acme');
    expect(await redis.exists(credits.gateKey('account:acme'))).toBe(0);
    // Released before a reset, the gate keeps its TTL.
    await credits.markExhausted('account:acme', 'credits exhausted (402)', now);
    expect(await credits.takeProbe('account:acme', now + 10)).toBe(true);
    await credits.releaseProbe('account:acme');
    expect(await redis.hget(credits.gateKey('account:acme'), 'nextProbeAt')).toBe('0');
    expect(await redis.pttl(credits.gateKey('account:acme'))).toBeGreaterThan(0);
  });

  it('a prefix with an empty or unbalanced brace is refused, naming it; a whole tag is accepted', async () => {
    for (const prefix of ['hfq{', 'x{}', 'a}b{', '{a}{b}', 'h}']) {
      expect(() => loadConnectionConfig({ REDIS_URL: redisUrl(), HFQ_PREFIX: prefix })).toThrow(ConfigError);
      expect(() => loadConnectionConfig({ REDIS_URL: redisUrl(), HFQ_PREFIX: prefix })).toThrow(
        /HFQ_PREFIX.*brace/,
      );
      expect(() => createProducer({ connection: redisUrl(), prefix })).toThrow(/prefix .*brace/);
      expect(() => createAdmin({ connection: redisUrl(), prefix })).toThrow(/prefix .*brace/);
      await expect(
        createWorker({
          connection: redisUrl(),
          prefix,
          accounts: [{ id: 'acme', tier: 'pro', hfToken: HF }],
        }),
      ).rejects.toThrow(/prefix .*brace/);
    }
    expect(loadConnectionConfig({ REDIS_URL: redisUrl(), HFQ_PREFIX: '{hfq}' }).prefix).toBe('{hfq}');
  });
});
