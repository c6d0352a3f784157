import type { AccountConfigInput, InferenceResult, Job } from '@hfq/shared';
import { expectedChatContent, type RequestRecord, type TokenConfig } from '@hfq/sim';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PRICES, estimateCost } from '../packages/worker/src/cost.js';
import { keysUnder } from './support/redis.js';
import { expectNoSecrets, type Stack, startStack } from './support/stack.js';

/**
 * The batch route on real worker processes, the simulator's batch API over HTTP and real Redis
 * (see docs/architecture.md, "Deadlines and the batch route"). Batch time runs 60 times faster
 * in the simulator (`timeScale`): its 3-minute turnaround takes 3 s here. Each job is paid once:
 * the simulator's successful real-time chat answers and its successful batch lines add up to the
 * number of jobs, and every job completed.
 */

const HF = 'hf_test_batchroute_0123456789abcdef';
const KEY = 'tg-test-batchroute-0123456789abcdef';
const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
const SCALE = 60;

const account = (extra: Partial<AccountConfigInput> = {}): AccountConfigInput => ({
  id: 'acme',
  tier: 'pro',
  hfToken: HF,
  limit: { max: 5, durationMs: 1000 },
  providerKeys: { together: { key: KEY, limits: [{ max: 5, durationMs: 1000 }] } },
  // Real time here is 10 jobs/s: a 5-second turnaround estimate and a 3-second margin fit the test's deadlines.
  batchRoute: { turnaroundMs: 5_000, marginMs: 3_000 },
  ...extra,
});

const chat = (i: number, tag: string): Job => ({
  account: 'acme',
  task: 'chat-completion',
  model: MODEL,
  messages: [{ role: 'user', content: `${tag} question ${i}` }],
  parameters: { max_tokens: 16 },
});

async function stackWith(batchApi: Record<string, unknown>, tokens: Record<string, TokenConfig> = {}) {
  const stack = await startStack({
    label: 'br',
    sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 1, maxMs: 3, perItemMs: 0 } },
    tokens: { [HF]: { label: 'hf' }, [KEY]: { label: 'key' }, ...tokens },
    accounts: [account()],
  });
  stack.sim.configure({
    batchApi: { turnaround: { kind: 'fixed', ms: 180_000 }, timeScale: SCALE, failureShare: 0, ...batchApi },
  });
  return stack;
}

/** Real-time chat answers the simulator gave (router and provider keys), successful ones. */
function realtimeChats(stack: Stack): RequestRecord[] {
  return stack.sim.requests(
    (r) =>
      r.status === 200 &&
      (r.route === 'router' || r.route === 'provider') &&
      r.path.endsWith('/chat/completions'),
  );
}

async function enqueueChats(stack: Stack, count: number, tag: string, deadline: string) {
  const jobs = Array.from({ length: count }, (_, i) => chat(i, tag));
  const handles = await Promise.all(jobs.map((job) => stack.producer.enqueue(job, { deadline })));
  return { jobs, handles, dueAt: Date.now() + parseInt(deadline, 10) * 1000 };
}

function expectAnswers(jobs: Job[], results: InferenceResult[]) {
  results.forEach((result, i) => {
    const messages = (jobs[i] as Extract<Job, { task: 'chat-completion' }>).messages;
    const output = result.output as { choices: { message: { content: string } }[] };
    expect(output.choices[0]?.message.content).toBe(expectedChatContent(messages));
  });
}

describe('the batch route on worker processes', () => {
  it('a batch completes: each job gets its own line, at the batch price, and the simulator sees each job once', async () => {
    const stack = await stackWith({});
    const [proc] = await stack.startWorkerProcesses(1);
    const { jobs, handles, dueAt } = await enqueueChats(stack, 20, 'a', '60s');
    // Parked at enqueue: delayed, not waiting.
    expect(await stack.producer.queue('acme').getDelayedCount()).toBeGreaterThan(0);
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
    expect(Date.now()).toBeLessThan(dueAt);
    expect(results.map((r) => r.route)).toEqual(jobs.map(() => 'provider-batch'));
    expectAnswers(jobs, results);
    results.forEach((result, i) => {
      const full = estimateCost(DEFAULT_PRICES, jobs[i] as Job, 'together', result.output);
      expect(result.costUsd).toBeCloseTo(full / 2, 12);
    });
    const stats = stack.sim.batchStats();
    expect(stats.byToken.key?.batches).toBe(1);
    expect(stats.byToken.key?.linesSucceeded).toBe(20);
    expect(realtimeChats(stack)).toHaveLength(0);
    // What the operator sees of the plan: the split of this model's jobs, against the deadline.
    const [status] = await stack.newAdmin().status();
    const plan = status?.batchPlans?.find((p) => p.model === jobs[0]?.model);
    expect(plan, JSON.stringify(status?.batchPlans)).toBeDefined();
    expect(plan?.batchedJobs).toBeGreaterThan(0);
    expect(plan?.provider).toBe('together');
    expect(plan?.meetsDeadline).toBe(true);
    expect(plan?.plannedCostUsd).toBeLessThan(plan?.costAllRealtimeUsd ?? 0);
    const redis = stack.redis();
    const dump = JSON.stringify(
      await Promise.all(
        (await keysUnder(redis, stack.prefix))
          .filter((k) => k.includes('provider-batch'))
          .map(async (k) => [k, await redis.dump(k)]),
      ),
    );
    expectNoSecrets(dump + (proc?.lines.join('\n') ?? ''), [HF, KEY], 'batch records and worker logs');
  }, 90_000);

  it('a stuck batch is cancelled at its hedge time; its jobs finish in real time before the deadline, paid once', async () => {
    const stack = await stackWith({ turnaround: { kind: 'stuck' } });
    await stack.startWorkerProcesses(1);
    const { handles, dueAt } = await enqueueChats(stack, 20, 'b', '40s');
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
    expect(Date.now()).toBeLessThanOrEqual(dueAt);
    expect(results.every((r) => r.route !== 'provider-batch')).toBe(true);
    const stats = stack.sim.batchStats();
    expect(stats.byToken.key?.batches).toBe(1);
    expect(stats.byStatus.cancelled).toBe(1);
    expect(stats.byToken.key?.linesSucceeded ?? 0).toBe(0);
    expect(realtimeChats(stack)).toHaveLength(20);
  }, 90_000);

  it('failed lines (5%) retry in real time and every job completes, each paid once', async () => {
    const stack = await stackWith({ failureShare: 0.05 });
    await stack.startWorkerProcesses(1);
    const { jobs, handles, dueAt } = await enqueueChats(stack, 80, 'd', '60s');
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
    expect(Date.now()).toBeLessThan(dueAt);
    expectAnswers(jobs, results);
    const stats = stack.sim.batchStats();
    const failed = stats.byToken.key?.linesFailed ?? 0;
    expect(failed).toBeGreaterThan(0);
    expect(results.filter((r) => r.route !== 'provider-batch')).toHaveLength(failed);
    expect(realtimeChats(stack)).toHaveLength(failed);
    expect((stats.byToken.key?.linesSucceeded ?? 0) + failed).toBe(80);
  }, 90_000);

  it("a key's 402 on its batch API closes the key's gate and the jobs run on the router", async () => {
    const stack = await stackWith(
      {},
      { [KEY]: { label: 'key', credits: { balanceUsd: 0, costPerRequestUsd: 0.001 } } },
    );
    await stack.startWorkerProcesses(1);
    const { handles, dueAt } = await enqueueChats(stack, 10, 'e', '60s');
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
    expect(Date.now()).toBeLessThan(dueAt);
    expect(results.map((r) => r.route)).toEqual(results.map(() => 'hf-router'));
    expect(stack.sim.received((r) => r.tokenLabel === 'key' && r.status === 402)).toBeGreaterThan(0);
    expect(stack.sim.batchStats().byToken.key?.batches ?? 0).toBe(0);
    const [status] = await stack.admin.status();
    expect(status?.keys).toEqual([
      expect.objectContaining({
        provider: 'together',
        credits: expect.objectContaining({ state: 'exhausted' }),
      }),
    ]);
  }, 90_000);

  it('jobs without a deadline (or preferring speed) are not parked and take the same route as before', async () => {
    const stack = await stackWith({});
    await stack.startWorkerProcesses(1);
    const plain = Array.from({ length: 5 }, (_, i) => chat(i, 'f'));
    const fast = Array.from({ length: 5 }, (_, i) => chat(i, 'g'));
    const handles = [
      ...(await Promise.all(plain.map((job) => stack.producer.enqueue(job)))),
      ...(await Promise.all(
        fast.map((job) => stack.producer.enqueue(job, { deadline: '1h', preference: 'speed' })),
      )),
    ];
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
    expect(results.map((r) => r.route)).toEqual(results.map(() => 'hf-router'));
    expect(stack.sim.batchStats().byToken.key?.batches ?? 0).toBe(0);
    expect(realtimeChats(stack)).toHaveLength(10);
    const redis = stack.redis();
    expect(
      (await keysUnder(redis, stack.prefix)).filter((k) => /provider-batch-(jobs|answers)/.test(k)),
    ).toEqual([]);
  }, 60_000);
});
