import type { Producer } from '@hfq/producer';
import type { AccountConfigInput, Job } from '@hfq/shared';
import { beforeEach, describe, expect, it } from 'vitest';
import { embedJob } from './support/jobs.js';
import { captureLogs } from './support/log-capture.js';
import { HfqProcess } from './support/processes.js';
import { type Stack, startStack, workerEnv } from './support/stack.js';

// A provider key's 402 (its prepaid balance ran out) is probed like the router's: one real
// request per interval for every worker together; its success reopens the key's gate.

const HF = 'hf_test_keyprobe_0123456789abcdef';
const TOGETHER = 'tg-test-keyprobe-key-0123456789';
const CEREBRAS = 'cb-test-keyprobe-key-0123456789';
const PROBE_MS = 60_000;
const NO_CREDITS = { balanceUsd: 0, costPerRequestUsd: 0.0001 };

let stack: Stack;

beforeEach(async () => {
  stack = await startStack({
    label: 'kp',
    sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 2, maxMs: 5, perItemMs: 0 } },
  });
});

function producer(): Producer {
  return stack.newProducer();
}

function worker(accounts: AccountConfigInput[], now: () => number) {
  return stack.startWorker({
    accounts,
    concurrency: 1,
    logger: captureLogs('info').logger,
    holdCheckMs: 100,
    now,
    creditProbeMs: PROBE_MS,
  });
}

const oneKey: AccountConfigInput = {
  id: 'acme',
  tier: 'pro',
  hfToken: HF,
  limit: { max: 1000, durationMs: 1000 },
  providerKeys: { together: { key: TOGETHER, limits: [{ max: 1000, durationMs: 1000 }] } },
  fallbackProviders: ['together'],
};

const twoKeys: AccountConfigInput = {
  ...oneKey,
  providerKeys: {
    together: { key: TOGETHER, limits: [{ max: 1000, durationMs: 1000 }] },
    cerebras: { key: CEREBRAS, limits: [{ max: 1000, durationMs: 1000 }] },
  },
  fallbackProviders: ['together', 'cerebras'],
};

// A model both Together and Cerebras serve (per the simulator's Hub mapping).
const chat = (i: number): Job => ({
  account: 'acme',
  task: 'chat-completion',
  model: 'meta-llama/Llama-3.1-8B-Instruct',
  messages: [{ role: 'user', content: `hello ${i}` }],
});

const keyRequests = (label: string) => stack.sim.received({ route: 'provider', tokenLabel: label });

describe('a provider key out of credits is probed', () => {
  it("a key's 402 reopens after a successful probe, one interval later, not next month", async () => {
    let now = Date.now();
    stack.sim.setToken(HF, { label: 'hf', credits: NO_CREDITS });
    stack.sim.setToken(TOGETHER, { label: 'together', credits: NO_CREDITS });
    const w = await worker([oneKey], () => now);
    const events: string[] = [];
    w.events.on('credits', (e) => events.push(`${e.scope.split(':')[0]}:${e.event}`));
    const p = producer();
    const first = await p.enqueue(embedJob(1));
    const queue = p.queue('acme');
    // The router and the only key are out of credits: the account holds, nothing failed.
    await expect.poll(() => queue.isPaused(), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => queue.getActiveCount(), { timeout: 10_000 }).toBe(0);
    expect(keyRequests('together')).toBe(1);
    const ops = stack.newAdmin([oneKey]);
    const [closed] = await ops.status();
    expect(closed?.keys.find((k) => k.provider === 'together')?.credits).toMatchObject({
      state: 'exhausted',
      nextProbeAtMs: now + PROBE_MS,
    });

    // The user tops the key up. Until the probe is due, the key hears nothing more.
    stack.sim.setToken(TOGETHER, { label: 'together' });
    expect(keyRequests('together')).toBe(1);
    now += PROBE_MS;
    const result = await first.result({ timeoutMs: 20_000 });
    expect(result.route).toBe('provider-key');
    expect(result.provider).toBe('together');
    expect(result.attempts).toBe(1);
    expect(events).toContain('key:reopened');
    expect(events.filter((e) => e === 'key:reopened')).toHaveLength(1);
    // The router is still out of credits: its gate stays closed; the key carries the work.
    const [open] = await ops.status();
    expect(open?.keys.find((k) => k.provider === 'together')?.credits.state).toBe('ok');
    expect(open?.credits.state).toBe('exhausted');
    const more = await p.enqueueMany(Array.from({ length: 5 }, (_, i) => embedJob(10 + i)));
    const results = await Promise.all(more.map((h) => h.result({ timeoutMs: 20_000 })));
    expect(results.every((r) => r.route === 'provider-key' && r.provider === 'together')).toBe(true);
    expect(keyRequests('together')).toBe(1 + 1 + 5);
    expect(await queue.isPaused()).toBe(false);
  });

  it('one probe request per interval across two workers, and the next probe moves out on a failed one', async () => {
    let now = Date.now();
    stack.sim.setToken(HF, { label: 'hf', credits: NO_CREDITS });
    stack.sim.setToken(TOGETHER, { label: 'together', credits: NO_CREDITS });
    await worker([oneKey], () => now);
    await worker([oneKey], () => now);
    const p = producer();
    const handles = await p.enqueueMany(Array.from({ length: 6 }, (_, i) => embedJob(i)));
    const queue = p.queue('acme');
    await expect.poll(() => queue.isPaused(), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => queue.getActiveCount(), { timeout: 10_000 }).toBe(0);
    // Only what was in flight when the key's first 402 came back: one request per worker.
    const base = keyRequests('together');
    expect(base).toBeGreaterThanOrEqual(1);
    expect(base).toBeLessThanOrEqual(2);
    for (let round = 1; round <= 2; round += 1) {
      now += PROBE_MS;
      await expect.poll(() => keyRequests('together'), { timeout: 10_000 }).toBe(base + round);
      await expect.poll(() => queue.isPaused(), { timeout: 10_000 }).toBe(true);
      await expect.poll(() => queue.getActiveCount(), { timeout: 10_000 }).toBe(0);
      expect(keyRequests('together')).toBe(base + round);
      // The failed probe pushed the next one a whole interval out.
      const [status] = await stack.newAdmin([oneKey]).status();
      expect(status?.keys[0]?.credits).toMatchObject({ state: 'exhausted', nextProbeAtMs: now + PROBE_MS });
    }
    expect(await queue.getJobCounts('failed')).toEqual({ failed: 0 });
    stack.sim.setToken(TOGETHER, { label: 'together' });
    now += PROBE_MS;
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 20_000 })));
    expect(results.every((r) => r.route === 'provider-key' && r.provider === 'together')).toBe(true);
  });
});

describe('hfq credits reset --key', () => {
  it('resets one key: that key reopens and carries the held jobs; the other key and the router stay closed', async () => {
    const now = Date.now();
    stack.sim.setToken(HF, { label: 'hf', credits: NO_CREDITS });
    stack.sim.setToken(TOGETHER, { label: 'together', credits: NO_CREDITS });
    stack.sim.setToken(CEREBRAS, { label: 'cerebras', credits: NO_CREDITS });
    await worker([twoKeys], () => now);
    const p = producer();
    const handle = await p.enqueue(chat(1));
    const queue = p.queue('acme');
    await expect.poll(() => queue.isPaused(), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => queue.getActiveCount(), { timeout: 10_000 }).toBe(0);
    expect(keyRequests('together')).toBe(1);
    expect(keyRequests('cerebras')).toBe(1);

    // An admin with no account config finds the keys by what the worker published (their
    // domains, never the keys): a key the account does not have is named, nothing is reset.
    const ops = stack.newAdmin([]);
    await expect(ops.resetKeyCredits('acme', 'mistral')).rejects.toThrow(
      'account "acme" has no provider key "mistral" (its keys: together, cerebras)',
    );
    await expect(ops.resetKeyCredits('nobody', 'together')).rejects.toThrow('unknown account "nobody"');
    const [held] = await ops.status();
    expect(held?.keys.map((k) => k.credits.state)).toEqual(['exhausted', 'exhausted']);

    // The operator tops up Together and resets that key alone, with the CLI.
    stack.sim.setToken(TOGETHER, { label: 'together' });
    const { env, cleanup } = workerEnv(stack.sim, {
      redisUrl: stack.redisUrl,
      prefix: stack.prefix,
      accounts: [twoKeys],
    });
    stack.defer(cleanup);
    const cli = HfqProcess.start(['credits', 'reset', 'acme', '--key', 'together'], env);
    expect(await cli.exited).toEqual({ code: 0, signal: null });
    // The reset resumes the held queue, or a worker's supervisor, seeing the key open, did first.
    expect(cli.lines, cli.lines.join('\n')).toEqual([
      expect.stringMatching(/^credits reset for acme's together key \(key:\S+\)(; held queue resumed)?$/),
    ]);
    const result = await handle.result({ timeoutMs: 20_000 });
    expect(`${result.route}/${result.provider}`).toBe('provider-key/together');
    const [status] = await ops.status();
    expect(status?.keys.find((k) => k.provider === 'together')?.credits.state).toBe('ok');
    expect(status?.keys.find((k) => k.provider === 'cerebras')?.credits.state).toBe('exhausted');
    expect(status?.credits.state).toBe('exhausted');
    // Cerebras was not asked again: its gate is still closed for every worker.
    expect(keyRequests('cerebras')).toBe(1);
  });
});
