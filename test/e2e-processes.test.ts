import type { InferenceResult } from '@hfq/producer';
import type { Job } from '@hfq/shared';
import {
  expectedChatContent,
  expectedClassification,
  expectedEmbedding,
  expectedImagePng,
  type Sim,
} from '@hfq/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, metricsPortOf, sampleSum } from './ops-support.js';
import type { HfqProcess } from './support/processes.js';
import { adminRedis, expectNoClientsLeft, keysUnder } from './support/redis.js';
import { expectNoSecrets, type Stack, startStack } from './support/stack.js';

const TOKENS = { alpha: 'hf_test_alpha_0123456789abcdef', beta: 'hf_test_beta_0123456789abcdef' };
const ACCOUNTS = [
  { id: 'alpha', tier: 'free' as const, hfToken: TOKENS.alpha, limit: { max: 60, durationMs: 1000 } },
  { id: 'beta', tier: 'pro' as const, hfToken: TOKENS.beta, limit: { max: 60, durationMs: 1000 } },
];

/** 240 jobs: chat, single and array embeddings, classification and a few images, over two accounts. */
function mixedJobs(): Job[] {
  const jobs: Job[] = [];
  for (let i = 0; i < 240; i++) {
    const account = i % 2 === 0 ? 'alpha' : 'beta';
    switch (i % 6) {
      case 0:
      case 1:
        jobs.push({
          account,
          task: 'chat-completion',
          model: 'meta-llama/Llama-3.1-8B-Instruct',
          messages: [{ role: 'user', content: `question ${i}` }],
          parameters: { max_tokens: 32 },
        });
        break;
      case 2:
        jobs.push({
          account,
          task: 'feature-extraction',
          model: 'sentence-transformers/all-MiniLM-L6-v2',
          inputs: `text ${i}`,
        });
        break;
      case 3:
        jobs.push({
          account,
          task: 'feature-extraction',
          model: 'BAAI/bge-small-en-v1.5',
          inputs: [`a ${i}`, `b ${i}`, `c ${i}`],
        });
        break;
      case 4:
        jobs.push({
          account,
          task: 'text-classification',
          model: 'distilbert/distilbert-base-uncased-finetuned-sst-2-english',
          inputs: `review ${i}`,
        });
        break;
      default:
        if (i % 24 === 5) {
          jobs.push({
            account,
            task: 'text-to-image',
            model: 'black-forest-labs/FLUX.1-schnell',
            inputs: `a cat ${i}`,
          });
        } else {
          jobs.push({
            account,
            task: 'feature-extraction',
            model: 'BAAI/bge-small-en-v1.5',
            inputs: `more ${i}`,
          });
        }
    }
  }
  return jobs;
}

/** The simulator's deterministic answer for a job, in the shape the worker returns. */
function expectOutput(job: Job, output: unknown): void {
  switch (job.task) {
    case 'chat-completion': {
      const content = (output as { choices: { message: { content: string } }[] }).choices[0]?.message.content;
      expect(content).toBe(expectedChatContent(job.messages as never));
      return;
    }
    case 'feature-extraction':
      expect(output).toEqual(
        Array.isArray(job.inputs)
          ? job.inputs.map((t) => expectedEmbedding(t))
          : expectedEmbedding(job.inputs),
      );
      return;
    case 'text-classification':
      expect(output).toEqual(expectedClassification(job.inputs));
      return;
    case 'text-to-image': {
      const image = output as { contentType: string; base64: string };
      expect(image.contentType).toBe('image/png');
      expect(Buffer.from(image.base64, 'base64')).toEqual(Buffer.from(expectedImagePng(job.inputs)));
      return;
    }
    default:
      throw new Error(`unexpected task ${job.task}`);
  }
}

describe('two worker processes, two accounts, the simulator over HTTP', () => {
  let stack: Stack;
  let sim: Sim;
  let prefix: string;
  let workers: HfqProcess[] = [];

  beforeAll(async () => {
    // Shared by the suite: the second test stops the processes the first one ran on.
    stack = await startStack({
      label: 'e2e',
      sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 5, maxMs: 40, perItemMs: 1 } },
      tokens: { [TOKENS.alpha]: { label: 'alpha' }, [TOKENS.beta]: { label: 'beta' } },
      accounts: ACCOUNTS,
      teardown: 'caller',
    });
    ({ sim, prefix } = stack);
    workers = await stack.startWorkerProcesses(2, { concurrency: 8 });
  });

  afterAll(() => stack?.stop());

  it('completes 240 mixed jobs, every result equal to the upstream answer, no secret anywhere', async () => {
    const admin = adminRedis();
    const producer = stack.newProducer();
    try {
      const jobs = mixedJobs();
      const handles = await producer.enqueueMany(jobs);
      const results: InferenceResult[] = await Promise.all(
        handles.map((h) => h.result({ timeoutMs: 90_000 })),
      );
      expect(results).toHaveLength(jobs.length);
      results.forEach((result, i) => {
        const job = jobs[i] as Job;
        expectOutput(job, result.output);
        expect(result.route).toBe('hf-router');
        expect(result.attempts).toBe(1);
        expect(result.costUsd).toBeGreaterThan(0);
      });
      for (const account of ['alpha', 'beta']) {
        const counts = await producer
          .queue(account)
          .getJobCounts('completed', 'failed', 'waiting', 'active', 'delayed');
        expect(counts).toEqual({ completed: 120, failed: 0, waiting: 0, active: 0, delayed: 0 });
      }
      // Both processes took work: each counts the jobs it completed on its own /metrics.
      const served = await Promise.all(
        workers.map(async (w) =>
          sampleSum((await http(`http://127.0.0.1:${metricsPortOf(w)}/metrics`)).text, 'hfq_jobs_total', {
            outcome: 'completed',
          }),
        ),
      );
      expect(served.every((n) => n > 0)).toBe(true);
      expect(served.reduce((a, b) => a + b, 0)).toBe(jobs.length);
      expect(sim.stats().byToken.alpha?.total).toBeGreaterThanOrEqual(120);

      // Secrets: not in Redis (job data, results, hfq state), not in any log line, not in results.
      const secrets = Object.values(TOKENS);
      const keys = await keysUnder(admin, prefix);
      for (const key of keys) {
        const type = await admin.type(key);
        const dump =
          type === 'hash'
            ? JSON.stringify(await admin.hgetall(key))
            : type === 'string'
              ? String(await admin.get(key))
              : type === 'list'
                ? JSON.stringify(await admin.lrange(key, 0, -1))
                : type === 'zset'
                  ? JSON.stringify(await admin.zrange(key, 0, -1))
                  : type === 'stream'
                    ? JSON.stringify(await admin.xrange(key, '-', '+'))
                    : '';
        expectNoSecrets(dump, secrets, `Redis key ${key}`);
        expect(key).not.toContain('hf_');
      }
      expectNoSecrets(workers.flatMap((w) => w.lines).join('\n'), secrets, 'worker logs');
      expectNoSecrets(JSON.stringify(results), secrets, 'results');
    } finally {
      await producer.close();
      await expectNoClientsLeft(admin, `${prefix}:hfq-producer`);
      await admin.quit();
    }
  });

  it('stops gracefully on SIGTERM and leaves no connection behind', async () => {
    const admin = adminRedis();
    try {
      const exits = await Promise.all(workers.map((w) => w.stop('SIGTERM')));
      expect(exits.map((e) => e.code)).toEqual([0, 0]);
      await expectNoClientsLeft(admin, prefix);
    } finally {
      await admin.quit();
    }
  });
});
