import type { AccountConfigInput, Job } from '@hfq/shared';
import { describe, expect, it } from 'vitest';
import { BatchRecordStore } from '../packages/worker/src/batch-route/batch-record-store.js';
import { startStack } from './support/stack.js';

/**
 * A worker process holding a provider batch is killed (SIGKILL) after the upload, after the
 * create, and while it downloads the results (see docs/architecture.md, "Deadlines and the batch
 * route"). The simulator holds each answer back after doing the work, so the kill falls in that
 * window for sure. A second process takes over once the account's watch lease lapses: nothing is
 * lost, the provider made one batch, and every job is answered by it (no real-time request).
 */

const HF = 'hf_test_batchcrash_0123456789abcdef';
const KEY = 'tg-test-batchcrash-0123456789abcdef';
const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
const JOBS = 12;

const acme: AccountConfigInput = {
  id: 'acme',
  tier: 'pro',
  hfToken: HF,
  limit: { max: 5, durationMs: 1000 },
  providerKeys: { together: { key: KEY, limits: [{ max: 5, durationMs: 1000 }] } },
  batchRoute: { turnaroundMs: 5_000, marginMs: 3_000 },
};

const chat = (i: number, tag: string): Job => ({
  account: 'acme',
  task: 'chat-completion',
  model: MODEL,
  messages: [{ role: 'user', content: `${tag} crash question ${i}` }],
});

const HELD_MS = 8_000;

describe('a worker killed while it holds a provider batch', () => {
  it.each(['upload', 'create', 'download'] as const)(
    'killed during the %s: the next worker resumes, one batch, every job answered by it',
    async (step) => {
      const stack = await startStack({
        label: 'bc',
        sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 1, maxMs: 3, perItemMs: 0 } },
        tokens: { [HF]: { label: 'hf' }, [KEY]: { label: 'key' } },
        accounts: [acme],
      });
      const { sim } = stack;
      sim.configure({
        batchApi: {
          turnaround: { kind: 'fixed', ms: 180_000 },
          timeScale: 60,
          answerDelayMs: { [step]: HELD_MS },
        },
      });
      const [first] = await stack.startWorkerProcesses(1);
      const handles = await Promise.all(
        Array.from({ length: JOBS }, (_, i) => stack.producer.enqueue(chat(i, step), { deadline: '90s' })),
      );
      const records = new BatchRecordStore(stack.redis(), stack.prefix);
      const state = async () => (await records.openRecords('acme'))[0]?.state;
      if (step === 'upload') await expect.poll(state, { timeout: 30_000 }).toBe('planned');
      if (step === 'create') await expect.poll(state, { timeout: 30_000 }).toBe('creating');
      if (step === 'download') {
        await expect.poll(() => sim.batchStats().byStatus.completed ?? 0, { timeout: 30_000 }).toBe(1);
      }
      // The held answer is in flight: the provider has done the work, the worker does not know yet.
      await expect.poll(() => sim.stats().inFlight, { timeout: 10_000 }).toBeGreaterThan(0);
      first?.child.kill('SIGKILL');
      await first?.exited;
      sim.configure({ batchApi: { answerDelayMs: { upload: 0, create: 0, download: 0 } } });

      await stack.startWorkerProcesses(1);
      const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 80_000 })));
      expect(results.map((r) => r.route)).toEqual(results.map(() => 'provider-batch'));
      const stats = sim.batchStats();
      expect(stats.byToken.key?.batches).toBe(1);
      expect(stats.byToken.key?.linesSucceeded).toBe(JOBS);
      expect(sim.received((r) => r.path.endsWith('/chat/completions'))).toBe(0);
      expect(await records.openRecords('acme')).toEqual([]);
    },
    120_000,
  );
});
