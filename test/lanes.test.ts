/**
 * Every route its own lane (see docs/architecture.md, "Every route its own lane"): a slow, paused
 * or held route never stalls the jobs another route can serve. Real Redis, real BullMQ, real
 * worker processes where the scenario is about the queue, the simulator over HTTP.
 */
import type { AccountConfigInput } from '@hfq/shared';
import { DomainLimiter, endpointKeys, laneQueueName } from '@hfq/shared/internal';
import { describe, expect, it } from 'vitest';
import { IDLE_BLOCK_SECONDS } from '../packages/worker/src/lane-runtime.js';
import { testRedis } from './support/redis.js';
import { startStack, upstreamOf } from './support/stack.js';
import { waitFor } from './support/wait.js';

const HF = 'hf_lanesowner';
const EMBED = 'BAAI/bge-small-en-v1.5';
const CHAT = 'meta-llama/Llama-3.1-8B-Instruct';

function chatJobs(n: number, provider?: string) {
  return Array.from({ length: n }, (_, i) => ({
    account: 'acme',
    task: 'chat-completion' as const,
    model: CHAT,
    ...(provider ? { provider } : {}),
    messages: [{ role: 'user' as const, content: `question ${i}` }],
  }));
}

function embedJobs(n: number, provider?: string) {
  return Array.from({ length: n }, (_, i) => ({
    account: 'acme',
    task: 'feature-extraction' as const,
    model: EMBED,
    ...(provider ? { provider } : {}),
    inputs: `text ${i}`,
  }));
}

describe('lanes', () => {
  it('jobs of an idle endpoint all start behind a long backlog of a slow router route (worker processes)', async () => {
    const stack = await startStack({
      label: 'lane1',
      sim: { endpoints: { emb: { model: EMBED, slotsPerReplica: 8, latency: { baseMs: 75 } } } },
    });
    const accounts: AccountConfigInput[] = [
      {
        id: 'acme',
        tier: 'pro',
        hfToken: HF,
        // The router at 2 requests/s: 200 chat jobs take 100 s.
        limit: { max: 2, durationMs: 1000 },
        endpoints: [{ name: 'emb', url: stack.sim.endpointUrl('emb'), models: [EMBED], concurrency: 4 }],
      },
    ];
    await stack.startWorkerProcesses(2, { accounts, concurrency: 8, stopSignal: 'SIGKILL' });
    const producer = stack.producer;
    const chat = await producer.enqueueMany(chatJobs(200));
    expect(new Set(chat.map((h) => h.lane))).toEqual(new Set(['router']));
    const started = performance.now();
    const embeddings = await producer.enqueueMany(embedJobs(100));
    expect(new Set(embeddings.map((h) => h.lane))).toEqual(new Set(['endpoint.emb']));
    const results = await Promise.all(embeddings.map((h) => h.result({ timeoutMs: 60_000 })));
    const elapsedMs = performance.now() - started;
    expect(results.every((r) => r.attempts === 1)).toBe(true);
    // The invariant: every endpoint job ran while the chat backlog was still there.
    const chatDone = await producer.queue('acme').getJobCountByTypes('completed', 'failed');
    expect(chatDone).toBeLessThan(200);
    const chatWaiting = await producer.queue('acme').getJobCountByTypes('waiting', 'prioritized', 'delayed');
    expect(chatWaiting).toBeGreaterThan(0);
    console.log(
      `lanes: 100 endpoint jobs done ${Math.round(elapsedMs)} ms after enqueue, behind 200 chat jobs at 2/s (${chatDone} of them done)`,
    );
  });

  it('the endpoint scales to zero while held router jobs wait, and autoResume does not wake it for them', async () => {
    const stack = await startStack({ label: 'lane2' });
    // The router answers 402 (no credits) and the account has no provider key: router jobs are held.
    stack.sim.setToken(HF, { label: 'hf', credits: { balanceUsd: 0, costPerRequestUsd: 0.0001 } });
    stack.sim.setEndpoint('emb', { model: EMBED, coldStartMs: 300, token: HF });
    const management = { namespace: 'sim', name: 'emb' };
    const accounts: AccountConfigInput[] = [
      {
        id: 'acme',
        tier: 'pro',
        hfToken: HF,
        routing: 'endpoint-first',
        endpoints: [
          {
            name: 'emb',
            url: stack.sim.endpointUrl('emb'),
            models: [EMBED],
            concurrency: 4,
            management,
            idleScaleToZeroMs: 400,
            autoResume: true,
          },
        ],
      },
    ];
    await stack.startWorker({
      accounts,
      upstream: { ...upstreamOf(stack.sim), endpointsApiUrl: stack.sim.endpointsApiUrl },
      holdCheckMs: 200,
      endpoints: { checkMs: 100 },
    });
    const producer = stack.newProducer();
    await producer.enqueueMany(chatJobs(20));
    await waitFor(() => producer.queue('acme').isPaused(), 'the router lane held', 20_000);

    const embeddings = await producer.enqueueMany(embedJobs(30));
    const results = await Promise.all(embeddings.map((h) => h.result({ timeoutMs: 30_000 })));
    expect(results.every((r) => r.route === 'endpoint')).toBe(true);
    await waitFor(
      () => stack.sim.endpointStats('emb').state === 'scaledToZero',
      'scale to zero while only held router jobs remain',
      20_000,
    );
    const resumesBefore = stack.sim.endpointStats('emb').management.resume ?? 0;

    // Ten more lifecycle checks with the held jobs still there: none wakes the endpoint.
    const redis = testRedis();
    const lifecycle = endpointKeys(stack.prefix, 'acme', 'emb').lifecycle;
    const seen = new Set<string>();
    await waitFor(
      async () => {
        seen.add((await redis.hget(lifecycle, 'lastAt')) ?? '');
        return seen.size > 10;
      },
      'ten lifecycle checks',
      20_000,
    );
    expect(stack.sim.endpointStats('emb').state).toBe('scaledToZero');
    expect(stack.sim.endpointStats('emb').management.resume ?? 0).toBe(resumesBefore);
    expect(await producer.queue('acme').isPaused()).toBe(true);
    expect(await producer.queue('acme').getJobCountByTypes('waiting', 'prioritized')).toBe(20);
    const [status] = await stack.newAdmin(accounts).status();
    expect(status?.lanes.find((l) => l.lane === 'router')).toMatchObject({ paused: true });
    expect(status?.lanes.find((l) => l.lane === 'router')?.holdReason).toMatch(/credits|402|closed/i);
    expect(status?.endpoints[0]).toMatchObject({ backlog: 0 });
  });

  it("a provider's Retry-After pauses only that provider's lane: another provider's jobs go on", async () => {
    const stack = await startStack({
      label: 'lane3',
      sim: {
        // Together's own limit, passed through the router with a Retry-After.
        providerLimits: { together: [{ algorithm: 'fixed-window', limit: 2, windowMs: 1000 }] },
        throttleStyle: { router: { retryAfter: 'seconds' } },
      },
    });
    const accounts: AccountConfigInput[] = [
      { id: 'acme', tier: 'pro', hfToken: HF, limit: { max: 50, durationMs: 1000 } },
    ];
    const worker = await stack.startWorker({ accounts, holdCheckMs: 200 });
    const producer = stack.newProducer();
    const together = await producer.enqueueMany(chatJobs(60, 'together'));
    expect(new Set(together.map((h) => h.lane))).toEqual(new Set(['router.together']));
    // Together throttles before the other provider's jobs arrive.
    await waitFor(() => (stack.sim.stats().byStatus['429'] ?? 0) > 0, 'a 429 from together', 20_000);
    const other = await producer.enqueueMany(embedJobs(40, 'hf-inference'));
    expect(new Set(other.map((h) => h.lane))).toEqual(new Set(['router.hf-inference']));
    const results = await Promise.all(other.map((h) => h.result({ timeoutMs: 30_000 })));
    expect(results.every((r) => r.route === 'hf-router' && r.attempts === 1)).toBe(true);
    const togetherQueue = producer.queue('acme', 'router.together');
    expect(await togetherQueue.getJobCountByTypes('completed')).toBeLessThan(60);
    // The pause was together's domain's alone.
    const runtime = worker.runtimes.get('acme');
    const routes = runtime?.routes;
    if (!routes) throw new Error('no runtime');
    const state = new DomainLimiter(testRedis(), stack.prefix);
    expect((await state.state(routes.routerDomainFor('together').id)).recent429s).toBeGreaterThan(0);
    expect((await state.state(routes.routerDomainFor('hf-inference').id)).recent429s).toBe(0);
    expect(laneQueueName('acme', 'router.together')).toBe('account-{acme}.router.together');
  });

  it("a job with a priority put back for a stated wait starts again when the wait ends, not at the end of the lane's idle block", async () => {
    const stack = await startStack({
      label: 'lane4',
      sim: {
        providerLimits: { together: [{ algorithm: 'fixed-window', limit: 1, windowMs: 1000 }] },
        throttleStyle: { router: { retryAfter: 'seconds' } },
      },
    });
    const accounts: AccountConfigInput[] = [
      { id: 'acme', tier: 'pro', hfToken: HF, limit: { max: 50, durationMs: 1000 } },
    ];
    await stack.startWorker({ accounts });
    const producer = stack.newProducer();
    const started = performance.now();
    // BullMQ puts a job with a priority back without writing the queue's marker: only hfq's wakes
    // the lane's worker, which otherwise blocks for IDLE_BLOCK_SECONDS (10 s) before it looks again.
    const handles = await producer.enqueueMany(
      chatJobs(3, 'together').map((job) => ({ job, options: { priority: 5 } })),
    );
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
    const elapsedMs = performance.now() - started;
    expect(results.every((r) => r.attempts === 1)).toBe(true);
    expect(stack.sim.stats().byStatus['429'] ?? 0).toBeGreaterThan(0);
    // Three 1-s windows of the upstream, with the waits its Retry-After states: about 2-3 s; a
    // worker woken only by its idle block takes 10 s or more for the first job put back.
    expect(elapsedMs).toBeLessThan(IDLE_BLOCK_SECONDS * 1000 - 2_000);
  });
});
