import { JobFailedError, type Producer } from '@hfq/producer';
import type { AccountConfigInput, Job } from '@hfq/shared';
import { classifyUpstream } from '@hfq/shared/internal';
import { holdKey } from '@hfq/worker/internal';
import { beforeEach, describe, expect, it } from 'vitest';
import { embedJob } from './support/jobs.js';
import { captureLogs } from './support/log-capture.js';
import { type Stack, startStack } from './support/stack.js';

const HF = 'hf_test_gates_0123456789abcdef';
const TOGETHER = 'tg-test-gates-key-0123456789';
const CEREBRAS = 'cb-test-gates-key-0123456789';
const PROBE_MS = 60_000;
const chat = (i: number): Job => ({
  account: 'acme',
  task: 'chat-completion',
  model: 'meta-llama/Llama-3.1-8B-Instruct',
  messages: [{ role: 'user', content: `hello ${i}` }],
});

let stack: Stack;

beforeEach(async () => {
  stack = await startStack({
    label: 'cg',
    sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 2, maxMs: 5, perItemMs: 0 } },
  });
});

function producer(): Producer {
  return stack.newProducer();
}

function worker(accounts: AccountConfigInput[], now: () => number, logger = captureLogs('info').logger) {
  return stack.startWorker({
    accounts,
    concurrency: 1,
    logger,
    holdCheckMs: 100,
    now,
    creditProbeMs: PROBE_MS,
  });
}

function admin(accounts: AccountConfigInput[]) {
  return stack.newAdmin(accounts);
}

const withKey: AccountConfigInput = {
  id: 'acme',
  tier: 'pro',
  hfToken: HF,
  limit: { max: 100, durationMs: 1000 },
  providerKeys: { together: { key: TOGETHER, limits: [{ max: 100, durationMs: 1000 }] } },
  fallbackProviders: ['together'],
};

describe('router probe while HF credits are exhausted', () => {
  it('a 402 at 00:01 on the 1st does not close the router for the month: one probe per interval reopens it', async () => {
    let now = Date.UTC(2026, 11, 1, 0, 1);
    stack.sim.setToken(HF, { label: 'hf', credits: { balanceUsd: 0, costPerRequestUsd: 0.0001 } });
    stack.sim.setToken(TOGETHER, { label: 'key' });
    const w = await worker([withKey], () => now);
    const credits: string[] = [];
    w.events.on('credits', (e) => credits.push(e.event));
    const p = producer();
    expect((await (await p.enqueue(embedJob(1))).result({ timeoutMs: 20_000 })).route).toBe('provider-key');
    expect(credits).toEqual(['exhausted']);
    // The late reset: the credits are back, but the gate says "until January".
    stack.sim.setToken(HF, { label: 'hf' });
    expect((await (await p.enqueue(embedJob(2))).result({ timeoutMs: 20_000 })).route).toBe('provider-key');
    const [closed] = await admin([withKey]).status();
    expect(closed?.credits).toMatchObject({ state: 'exhausted', nextProbeAtMs: now + PROBE_MS });
    const routerBefore = stack.sim.received({ route: 'router', tokenLabel: 'hf' });
    expect(routerBefore).toBe(1); // the 402, nothing more while no probe was due
    now += PROBE_MS;
    expect((await (await p.enqueue(embedJob(3))).result({ timeoutMs: 20_000 })).route).toBe('hf-router');
    expect(credits).toEqual(['exhausted', 'reopened']);
    expect((await (await p.enqueue(embedJob(4))).result({ timeoutMs: 20_000 })).route).toBe('hf-router');
  });

  it('probes a held queue (no provider key) once per interval, all workers together, and resumes it', async () => {
    let now = Date.UTC(2026, 11, 1, 0, 1);
    stack.sim.setToken(HF, { label: 'hf', credits: { balanceUsd: 0, costPerRequestUsd: 0.0001 } });
    const account: AccountConfigInput = {
      id: 'acme',
      tier: 'pro',
      hfToken: HF,
      limit: { max: 1000, durationMs: 1000 },
    };
    await worker([account], () => now);
    await worker([account], () => now);
    const p = producer();
    const handles = await p.enqueueMany(Array.from({ length: 6 }, (_, i) => embedJob(i)));
    const queue = p.queue('acme');
    await expect.poll(() => queue.isPaused(), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => queue.getActiveCount(), { timeout: 10_000 }).toBe(0);
    // Only what was in flight when the first 402 came back: one request per worker (concurrency 1).
    const base = stack.sim.received({ route: 'router', tokenLabel: 'hf' });
    expect(base).toBeLessThanOrEqual(2);
    // Two probe intervals with credits still gone: one more router request each, not one per worker.
    for (let round = 1; round <= 2; round += 1) {
      now += PROBE_MS;
      await expect
        .poll(() => stack.sim.received({ route: 'router', tokenLabel: 'hf' }), { timeout: 10_000 })
        .toBe(base + round);
      await expect.poll(() => queue.isPaused(), { timeout: 10_000 }).toBe(true);
      await expect.poll(() => queue.getActiveCount(), { timeout: 10_000 }).toBe(0);
      expect(stack.sim.received({ route: 'router', tokenLabel: 'hf' })).toBe(base + round);
    }
    expect(await queue.getJobCounts('failed')).toEqual({ failed: 0 });
    stack.sim.setToken(HF, { label: 'hf' });
    now += PROBE_MS;
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 20_000 })));
    expect(results.every((r) => r.route === 'hf-router')).toBe(true);
  });

  it('reports an exhaustion every month it happens, not only the first (event, log, status)', async () => {
    let now = Date.UTC(2026, 10, 10, 12);
    stack.sim.setToken(HF, { label: 'hf', credits: { balanceUsd: 0, costPerRequestUsd: 0.0001 } });
    stack.sim.setToken(TOGETHER, { label: 'key' });
    const { logger, lines } = captureLogs('info');
    const w = await worker([withKey], () => now, logger);
    const events: string[] = [];
    w.events.on('credits', (e) => events.push(e.event));
    const p = producer();
    await (await p.enqueue(embedJob(1))).result({ timeoutMs: 20_000 });
    // December: the reset opened the gate; the credits run out again.
    now = Date.UTC(2026, 11, 2, 9);
    await (await p.enqueue(embedJob(2))).result({ timeoutMs: 20_000 });
    expect(events).toEqual(['exhausted', 'exhausted']);
    expect(lines.filter((l) => String(l.msg).startsWith('HF credits exhausted'))).toHaveLength(2);
    const [status] = await admin([withKey]).status();
    expect(status?.credits).toMatchObject({
      state: 'exhausted',
      sinceMs: now,
      untilMs: Date.UTC(2027, 0, 1),
    });
  });
});

describe('one refusal does not stop the account', () => {
  it('a router 403 for one gated model fails that job with the upstream reason; the account goes on', async () => {
    stack.sim.setToken(HF, { label: 'hf' });
    const account: AccountConfigInput = { id: 'acme', tier: 'pro', hfToken: HF };
    const gated =
      'Access to model acme/gated-model is restricted. You must have access to it and be authenticated.';
    stack.sim.script(HF, [{ status: 403, body: { error: gated } }]);
    await worker([account], Date.now);
    const p = producer();
    const refused = await (await p.enqueue(embedJob(1)))
      .result({ timeoutMs: 20_000 })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(JobFailedError);
    expect((refused as JobFailedError).reason).toContain('answered 403');
    expect((refused as JobFailedError).reason).toContain('is restricted');
    expect((await (await p.enqueue(embedJob(2))).result({ timeoutMs: 20_000 })).route).toBe('hf-router');
    expect(await p.queue('acme').isPaused()).toBe(false);
    const [status] = await admin([account]).status();
    expect(status?.credits.state).toBe('ok');
  });

  it('a 4xx saying "payment required" about something else closes no credit gate; credit wording on a 429 does', async () => {
    const about = (status: number, body: string) =>
      classifyUpstream({ status, body, route: 'hf-router' }).retryClass;
    expect(about(400, '{"error":"stop sequence \\"payment required\\" is not allowed"}')).toBe('fail');
    expect(about(429, '{"error":"Payment required for this feature on the free plan"}')).toBe('throttle');
    expect(about(429, '{"error":"You have no remaining credits. Purchase pre-paid credits"}')).toBe(
      'credits',
    );
    expect(about(402, '{"error":"Payment required"}')).toBe('credits');
    expect(about(403, "You are not a member of the organization 'x'. Requests cannot be billed to it.")).toBe(
      'hold',
    );
    expect(about(403, '{"error":"Access to model x is restricted"}')).toBe('fail');

    stack.sim.setToken(HF, { label: 'hf' });
    const account: AccountConfigInput = { id: 'acme', tier: 'pro', hfToken: HF };
    stack.sim.script(HF, [{ status: 400, body: { error: 'Invalid stop sequence: "payment required"' } }]);
    await worker([account], Date.now);
    const p = producer();
    const failed = await (await p.enqueue(embedJob(1)))
      .result({ timeoutMs: 20_000 })
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(JobFailedError);
    expect((await (await p.enqueue(embedJob(2))).result({ timeoutMs: 20_000 })).route).toBe('hf-router');
    const [status] = await admin([account]).status();
    expect(status?.credits.state).toBe('ok');
  });

  it('a router 401 holds the account and says so in status and log', async () => {
    stack.sim.setToken(HF, { label: 'hf', revoked: true });
    const account: AccountConfigInput = { id: 'acme', tier: 'pro', hfToken: HF };
    const { logger, lines } = captureLogs('info');
    await worker([account], Date.now, logger);
    const p = producer();
    await p.enqueue(embedJob(1));
    await expect.poll(() => p.queue('acme').isPaused(), { timeout: 10_000 }).toBe(true);
    const [status] = await admin([account]).status();
    expect(status?.credits).toMatchObject({ state: 'held' });
    expect(status?.credits.state === 'held' && status.credits.reason).toMatch(/answered 401/);
    expect(status?.route).toBe('holding');
    const line = lines.find((l) => String(l.msg).includes('refused the account token (401)'));
    expect(line).toMatchObject({ account: 'acme', status: 401 });
  });

  it('a provider key answering 401 closes that key (reason in status) and the job fails over to the next key', async () => {
    stack.sim.setToken(HF, { label: 'hf', credits: { balanceUsd: 0, costPerRequestUsd: 0.0001 } });
    stack.sim.setToken(TOGETHER, { label: 'together', revoked: true });
    stack.sim.setToken(CEREBRAS, { label: 'cerebras' });
    const account: AccountConfigInput = {
      id: 'acme',
      tier: 'pro',
      hfToken: HF,
      providerKeys: { together: TOGETHER, cerebras: CEREBRAS },
      fallbackProviders: ['together', 'cerebras'],
    };
    await worker([account], Date.now);
    const p = producer();
    const handles = await p.enqueueMany(Array.from({ length: 4 }, (_, i) => chat(i)));
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 20_000 })));
    expect(results.map((r) => `${r.route}/${r.provider}`)).toEqual(Array(4).fill('provider-key/cerebras'));
    expect(results.every((r) => r.attempts === 1)).toBe(true);
    // The refused key was asked once: its gate is closed for every later job.
    expect(stack.sim.received({ route: 'provider', tokenLabel: 'together' })).toBe(1);
    const [status] = await admin([account]).status();
    const together = status?.keys.find((k) => k.provider === 'together');
    expect(together?.credits.state).toBe('held');
    expect(together?.credits.state === 'held' && together.credits.reason).toMatch(/answered 401/);
    expect(status?.keys.find((k) => k.provider === 'cerebras')?.credits.state).toBe('ok');
  });
});

describe('holds', () => {
  const account: AccountConfigInput = { id: 'acme', tier: 'pro', hfToken: HF };

  it("a release that comes between a hold's key and its pause leaves no paused queue without a reason", async () => {
    stack.sim.setToken(HF, { label: 'hf' });
    const w = await worker([account], Date.now);
    const runtime = w.runtimes.get('acme');
    if (!runtime) throw new Error('no runtime');
    const ops = admin([account]);
    const redis = stack.redis();
    let release: Promise<unknown> | undefined;
    let releasedDuringHold = false;
    await runtime.hold('test hold', {
      betweenKeyAndPause: async () => {
        // The operator's reset arrives now, between the two steps of the hold.
        release = ops.resetCredits('acme');
        const settled = await Promise.race([
          release.then(() => true),
          new Promise((r) => setTimeout(() => r(false), 300)),
        ]);
        releasedDuringHold = settled === true;
      },
    });
    await release;
    expect(releasedDuringHold).toBe(false);
    const paused = await runtime.queue.isPaused();
    const reason = await redis.get(holdKey(stack.prefix, 'acme'));
    // Either held with its reason, or released and running: never paused with no reason.
    expect({ paused, held: reason !== null }).toEqual({ paused: false, held: false });
  });

  it('the supervisor resumes an account queue paused without a hold reason', async () => {
    stack.sim.setToken(HF, { label: 'hf' });
    const w = await worker([account], Date.now);
    const p = producer();
    const queue = p.queue('acme');
    await queue.pause();
    const handle = await p.enqueue(embedJob(1));
    // The supervisor runs every 100 ms here; the job completes once it resumes the queue.
    expect((await handle.result({ timeoutMs: 10_000 })).route).toBe('hf-router');
    expect(await queue.isPaused()).toBe(false);
    expect(w.runtimes.get('acme')).toBeDefined();
  });
});
