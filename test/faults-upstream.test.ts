import type { JobHandle } from '@hfq/producer';
import { type AccountConfigInput, DEFAULT_ATTEMPTS } from '@hfq/shared';
import { expectedChatContent, type FaultConfig, type RequestRecord, type ScriptStep } from '@hfq/sim';
import type { HfqWorker } from '@hfq/worker';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SpawnedRedis } from '../packages/cli/src/local-redis.js';
import {
  accountQueue,
  chatContent,
  chatFor,
  ownRedis,
  perJobModels,
  reportFault,
  requestsByModel,
} from './support/faults.js';
import { adminRedis } from './support/redis.js';
import { type Stack, startStack } from './support/stack.js';

/**
 * Fault: what the upstream can do wrong, from the simulator, against a worker with a
 * 500 ms per-request timeout. Each case is an account of its own (its own token, so its own
 * script and fault rates), with jobs on models of their own, so the simulator's log counts the
 * requests of each job. A `once` case scripts one faulty answer per job (two for the 503 storm
 * that passes; whichever job draws a step, each ends within its attempts); an `always` case
 * faults every request.
 */

const JOBS_PER_CASE = 3;
const TIMEOUT_MS = 500;
const OVERSIZED_BYTES = 40 * 1024 * 1024; // above the worker's 32 MiB cap on response bodies

interface FaultCase {
  id: string;
  title: string;
  /** Script steps for the case's token (each consumed by one request). */
  script?: ScriptStep[];
  faults?: Partial<FaultConfig>;
  outcome: 'completed' | 'failed';
  reason?: RegExp;
  /** Upstream requests per job: exact, or an upper bound. */
  requests: { exactly: number } | { atMost: number };
}

const ATTEMPTS = DEFAULT_ATTEMPTS;
const once = (step: ScriptStep, perJob = 1): ScriptStep[] =>
  Array.from({ length: JOBS_PER_CASE * perJob }, () => step);

const CASES: FaultCase[] = [
  {
    id: 'hang-once',
    title: 'hang, first request of each job',
    script: once({ fault: 'hang' }),
    outcome: 'completed',
    requests: { atMost: ATTEMPTS },
  },
  {
    id: 'hang-always',
    title: 'hang, every request',
    faults: { hangRate: 1 },
    outcome: 'failed',
    reason: /upstream request timed out/,
    requests: { exactly: ATTEMPTS },
  },
  {
    id: 'html-once',
    title: 'HTML 502 page, first request',
    script: once({ fault: 'html' }),
    outcome: 'completed',
    requests: { atMost: ATTEMPTS },
  },
  {
    id: 'html-always',
    title: 'HTML 502 page, every request',
    faults: { htmlRate: 1 },
    outcome: 'failed',
    // The client drops a non-JSON error body, so the reason carries the status and request id.
    reason: /Hugging Face router answered 502: .*\(request id [0-9a-f-]+\)/,
    requests: { exactly: ATTEMPTS },
  },
  {
    id: 'truncated',
    title: 'truncated JSON (200)',
    faults: { truncatedJsonRate: 1 },
    outcome: 'failed',
    reason: /malformed upstream answer/,
    requests: { exactly: 1 },
  },
  {
    id: 'oversized',
    title: 'oversized body (40 MiB, cap 32 MiB)',
    faults: { oversizedRate: 1, oversizedBytes: OVERSIZED_BYTES },
    outcome: 'failed',
    reason: /upstream response body larger than 33554432 bytes/,
    requests: { exactly: 1 },
  },
  {
    id: 'reset-once',
    title: 'connection reset, first request',
    script: once({ fault: 'reset' }),
    outcome: 'completed',
    requests: { atMost: ATTEMPTS },
  },
  {
    id: 'reset-always',
    title: 'connection reset, every request',
    faults: { resetRate: 1 },
    outcome: 'failed',
    reason: /connection error/,
    requests: { exactly: ATTEMPTS },
  },
  {
    id: 'storm-passes',
    title: '503 storm that passes (2 per job)',
    script: once({ status: 503 }, 2),
    outcome: 'completed',
    requests: { atMost: ATTEMPTS },
  },
  {
    id: 'storm-lasts',
    title: '503 storm that lasts',
    faults: { overloadedRate: 1 },
    outcome: 'failed',
    reason: /answered 503: Service Temporarily Unavailable/,
    requests: { exactly: ATTEMPTS },
  },
];

const tokenOf = (id: string) => `hf_faults_upstream_${id.replace(/-/g, '_')}_0123456789`;

describe('fault 6: upstream faults from the simulator', () => {
  let redis: SpawnedRedis;
  let admin: Redis;
  let stack: Stack;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    redis = await ownRedis();
    admin = adminRedis(redis.url);
  });

  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await admin?.quit();
    await redis?.stop();
  });

  beforeEach(async () => {
    const accounts: AccountConfigInput[] = [...CASES.map((c) => c.id), 'clean'].map((id) => ({
      id,
      tier: 'pro',
      hfToken: tokenOf(id),
      limit: { max: 50, durationMs: 1000 },
    }));
    stack = await startStack({
      label: 'fup',
      redisUrl: redis.url,
      sim: { latency: { baseMs: 0, jitterMs: 0 } },
      accounts,
    });
    for (const c of CASES) {
      stack.sim.setToken(tokenOf(c.id), { label: c.id, ...(c.faults ? { faults: c.faults } : {}) });
      if (c.script) stack.sim.script(tokenOf(c.id), c.script);
    }
    stack.sim.setToken(tokenOf('clean'), { label: 'clean' });
    await stack.startWorker({ timeoutMs: TIMEOUT_MS });
  });

  it('retries transient faults with backoff, fails the rest at once, each with its reason; no crash', async () => {
    const { sim, prefix } = stack;
    const worker = stack.workers[0] as HfqWorker;
    const producer = stack.producer;
    try {
      const models = new Map(CASES.map((c) => [c.id, perJobModels(sim, c.id, JOBS_PER_CASE)]));
      const handles = new Map<string, JobHandle[]>();
      for (const c of CASES) {
        handles.set(c.id, await producer.enqueueMany((models.get(c.id) ?? []).map((m) => chatFor(c.id, m))));
      }
      const settled = new Map(
        await Promise.all(
          CASES.map(
            async (c) =>
              [
                c.id,
                await Promise.allSettled(
                  (handles.get(c.id) ?? []).map((h) => h.result({ timeoutMs: 90_000 })),
                ),
              ] as const,
          ),
        ),
      );

      const backoffGaps: number[] = [];
      for (const c of CASES) {
        const caseModels = models.get(c.id) ?? [];
        const outcomes = settled.get(c.id) ?? [];
        const byModel = requestsByModel(sim, caseModels);
        const queue = accountQueue(admin, prefix, c.id);
        try {
          const jobs = await Promise.all((handles.get(c.id) ?? []).map((h) => queue.getJob(h.id)));
          const completed = outcomes.filter((o) => o.status === 'fulfilled').length;
          // A completed job keeps the failedReason of its earlier attempts: count outcomes instead.
          const failed = outcomes.filter((o) => o.status === 'rejected').length;
          const requests = caseModels.map((m) => byModel.get(m)?.length ?? 0);
          const okAnswers = caseModels.map(
            (m) => (byModel.get(m) ?? []).filter((r) => r.status === 200).length,
          );
          const duplicated = okAnswers.reduce((sum, n) => sum + Math.max(0, n - 1), 0);
          reportFault({
            fault: `6 ${c.title}`,
            enqueued: JOBS_PER_CASE,
            completed,
            failed,
            duplicated,
            notes: `upstream requests per job ${requests.join('/')}; ${
              failed
                ? `failedReason "${jobs[0]?.failedReason}"`
                : `attempts ${jobs.map((j) => j?.returnvalue?.attempts).join('/')}`
            }`,
          });

          if (c.outcome === 'completed') {
            expect(completed, c.id).toBe(JOBS_PER_CASE);
            outcomes.forEach((o, i) => {
              if (o.status !== 'fulfilled') return;
              const job = chatFor(c.id, caseModels[i] as string);
              expect(chatContent(o.value.output), c.id).toBe(expectedChatContent(job.messages));
            });
            // Every scripted fault was served, and each job needed a retry for it.
            expect(sim.received({ tokenLabel: c.id, scripted: true }), c.id).toBe(c.script?.length);
            expect(
              requests.reduce((a, b) => a + b, 0),
              c.id,
            ).toBeGreaterThanOrEqual(JOBS_PER_CASE + (c.script?.length ?? 0));
          } else {
            expect(failed, c.id).toBe(JOBS_PER_CASE);
            for (const job of jobs) {
              expect(job?.failedReason, c.id).toMatch(c.reason as RegExp);
              expect(job?.failedReason, c.id).not.toContain(tokenOf(c.id));
              expect(job?.failedReason, c.id).not.toMatch(/<html|<!doctype/i);
              // One attempt per upstream request: the job used what it was given, no more.
              if ('exactly' in c.requests) expect(job?.attemptsMade, c.id).toBe(c.requests.exactly);
            }
            for (const outcome of outcomes) {
              expect(outcome.status, c.id).toBe('rejected');
              if (outcome.status === 'rejected')
                expect(String(outcome.reason), c.id).toMatch(c.reason as RegExp);
            }
          }
          // No hot loop: never more requests than attempts, and backoff between retries.
          for (const n of requests) {
            if ('exactly' in c.requests) expect(n, c.id).toBe(c.requests.exactly);
            else expect(n, c.id).toBeLessThanOrEqual(c.requests.atMost);
          }
          if (c.outcome === 'failed' && 'exactly' in c.requests && c.requests.exactly > 1) {
            for (const records of byModel.values()) {
              const arrivals = records.map((r: RequestRecord) => r.t).sort((a, b) => a - b);
              // The sim's clock counts arrivals: a hung request's own 500 ms is part of the gap.
              const waits = arrivals.slice(1).map((t, i) => t - (arrivals[i] as number));
              backoffGaps.push(...waits);
              expect((arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0), `${c.id}: 4 backoffs`).toBeGreaterThan(100);
            }
          }
          expect(duplicated, c.id).toBe(0);
        } finally {
          await queue.close();
        }
      }
      const meanGap = backoffGaps.reduce((a, b) => a + b, 0) / backoffGaps.length;
      console.log(`FAULT | 6 backoff | ${backoffGaps.length} retry gaps, mean ${Math.round(meanGap)} ms`);
      expect(meanGap).toBeGreaterThan(200);

      // Nothing left hanging at the upstream, nothing unhandled, every BullMQ worker still running,
      // and a clean job still completes.
      expect(sim.stats().hanging).toBe(0);
      expect(unhandled).toEqual([]);
      for (const runtime of worker.runtimes.values()) expect(runtime.worker.isRunning()).toBe(true);
      const [clean] = perJobModels(sim, 'clean', 1);
      const result = await (await producer.enqueue(chatFor('clean', clean as string))).result({
        timeoutMs: 20_000,
      });
      expect(result.attempts).toBe(1);
    } finally {
      await producer.close();
    }
  }, 150_000);
});
