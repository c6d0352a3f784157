import type { Job } from '@hfq/shared';
import { beforeEach, describe, expect, it } from 'vitest';
import { embedJob } from './support/jobs.js';
import { type Stack, startStack } from './support/stack.js';

const HF = 'hf_test_payonce_0123456789abcdef';
const account = { id: 'acme', tier: 'pro' as const, hfToken: HF, limit: { max: 200, durationMs: 1000 } };
const chat = (parameters: Record<string, unknown>): Job => ({
  account: 'acme',
  task: 'chat-completion',
  model: 'meta-llama/Llama-3.1-8B-Instruct',
  provider: 'together',
  messages: [{ role: 'user', content: 'tell me a story' }],
  parameters: { max_tokens: 16, ...parameters },
});

let stack: Stack;

beforeEach(async () => {
  stack = await startStack({
    label: 'po',
    sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 1, maxMs: 3, perItemMs: 0 } },
    tokens: { [HF]: { label: 'hf' } },
    accounts: [account],
  });
});

describe('pay once: content identity', () => {
  it('the same jobs enqueued by two producers at once are one job each and reach the upstream once', async () => {
    const a = stack.newProducer();
    const b = stack.newProducer();
    const jobs = Array.from({ length: 40 }, (_, i) => embedJob(i));
    // Both producers, both ways (single adds and one transaction), racing for the same work.
    const [fromA, fromB, singles] = await Promise.all([
      a.enqueueMany(jobs),
      b.enqueueMany([...jobs].reverse()),
      Promise.all(jobs.map((job) => b.enqueue(job))),
    ]);
    expect(fromA.map((h) => h.id)).toEqual(singles.map((h) => h.id));
    expect(fromB.map((h) => h.id).reverse()).toEqual(singles.map((h) => h.id));
    expect(new Set(singles.map((h) => h.id)).size).toBe(40);
    await stack.startWorker({ concurrency: 8 });
    await Promise.all(fromA.map((h) => h.result({ timeoutMs: 30_000 })));
    // A re-run while the results are retained adds nothing and returns the old results.
    const again = await b.enqueueMany(jobs);
    const results = await Promise.all(again.map((h) => h.result({ timeoutMs: 30_000 })));
    expect(results).toHaveLength(40);
    expect(await a.queue('acme').getJobCounts('completed', 'waiting')).toEqual({ completed: 40, waiting: 0 });
    expect(stack.sim.received({ route: 'router', tokenLabel: 'hf' })).toBe(40);
  });

  it('a sampling job, or unique: false, is new work each time; an explicit jobId still wins', async () => {
    const p = stack.producer;
    const sampled = chat({ temperature: 0.8 });
    const seeded = chat({ temperature: 0.8, seed: 7 });
    const handles = [
      await p.enqueue(sampled),
      await p.enqueue(sampled),
      await p.enqueue(seeded),
      await p.enqueue(seeded),
      await p.enqueue(embedJob(1), { unique: false }),
      await p.enqueue(embedJob(1), { unique: false }),
      await p.enqueue(embedJob(2), { jobId: 'mine-2' }),
      await p.enqueue(embedJob(2), { jobId: 'mine-2' }),
    ];
    expect(handles[0]?.id).not.toBe(handles[1]?.id);
    expect(handles[2]?.id).toBe(handles[3]?.id);
    expect(handles[4]?.id).not.toBe(handles[5]?.id);
    expect(handles[6]?.id).toBe('mine-2');
    expect(handles[7]?.id).toBe('mine-2');
    await stack.startWorker({ concurrency: 4 });
    await Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
    // 2 sampled + 1 seeded + 2 unique:false + 1 explicit id.
    expect(stack.sim.received({ route: 'router', tokenLabel: 'hf' })).toBe(6);
  });

  it('rejects a bad contentKey or unique before Redis, naming the option', async () => {
    await expect(stack.producer.enqueue(embedJob(1), { contentKey: 'x'.repeat(201) })).rejects.toThrow(
      /contentKey/,
    );
    await expect(stack.producer.enqueue(embedJob(1), { unique: 'no' as unknown as boolean })).rejects.toThrow(
      /unique/,
    );
  });
});
