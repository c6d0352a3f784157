import type { JobHandle } from '@hfq/producer';
import type { AccountConfigInput } from '@hfq/shared';
import { accountQueueName } from '@hfq/shared/internal';
import type { Sim } from '@hfq/sim';
import { Queue } from 'bullmq';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { chatJob } from './ops-support.js';
import type { HfqProcess } from './support/processes.js';
import { adminRedis, expectNoClientsLeft } from './support/redis.js';
import { type Stack, startStack } from './support/stack.js';
import { waitFor } from './support/wait.js';

const FAST = 'hf_shutdown_fast_0123456789abcdef';
const SLOW = 'hf_shutdown_slow_0123456789abcdef';
const ACCOUNTS: AccountConfigInput[] = [
  { id: 'fast', tier: 'pro', hfToken: FAST, limit: { max: 50, durationMs: 1000 } },
  { id: 'slow', tier: 'pro', hfToken: SLOW, limit: { max: 50, durationMs: 1000 } },
];
const PER_ACCOUNT = 6;
const CONCURRENCY = 2;
const GRACE_MS = 2_000;

describe('graceful shutdown of a worker process (SIGTERM mid-run)', () => {
  const admin = adminRedis();
  let stack: Stack;
  let sim: Sim;
  let prefix: string;

  beforeEach(async () => {
    stack = await startStack({
      label: 'shutdown',
      sim: { latency: { baseMs: 0, jitterMs: 0 } },
      // The fast account's requests end well within the grace; the slow one's never do.
      tokens: { [FAST]: { label: 'fast', latency: { baseMs: 300 } } },
      accounts: ACCOUNTS,
    });
    ({ sim, prefix } = stack);
  });

  afterAll(() => admin.quit());

  /** One worker process on the stack; killed (not drained) at the end if a test left it running. */
  async function startWorker(extra: Record<string, string> = {}): Promise<HfqProcess> {
    const [proc] = await stack.startWorkerProcesses(1, {
      concurrency: CONCURRENCY,
      extra: { HFQ_SHUTDOWN_GRACE_MS: String(GRACE_MS), ...extra },
      stopSignal: 'SIGKILL',
    });
    return proc as HfqProcess;
  }

  // One scenario in two steps, in one test so that no test depends on another's state.
  it('finishes what it can within the grace, hands the rest back without using an attempt or a stall, exits 0; a new worker then completes every handed-back job on its first attempt', async () => {
    sim.setToken(SLOW, { label: 'slow', latency: { baseMs: 60_000 } });
    const worker = await startWorker();
    const producer = stack.producer;
    const handles: JobHandle[] = await producer.enqueueMany([
      ...Array.from({ length: PER_ACCOUNT }, (_, i) => chatJob('fast', `fast ${i}`)),
      ...Array.from({ length: PER_ACCOUNT }, (_, i) => chatJob('slow', `slow ${i}`)),
    ]);
    // Both accounts have jobs running (the simulator records a request when it ends, so ask Redis).
    const active = async (account: string) => {
      const queue = new Queue(accountQueueName(account), { connection: admin, prefix });
      try {
        return (await queue.getJobCounts('active')).active ?? 0;
      } finally {
        await queue.close();
      }
    };
    await waitFor(
      async () => (await active('slow')) >= CONCURRENCY && (await active('fast')) >= 1,
      'jobs in flight',
    );
    const signalledAt = Date.now();
    const exit = await worker.stop('SIGTERM');
    const tookMs = Date.now() - signalledAt;
    expect(exit.code).toBe(0);
    // It waited for the grace, and did not wait for the 60 s requests.
    expect(tookMs).toBeGreaterThanOrEqual(GRACE_MS - 100);
    expect(tookMs).toBeLessThan(GRACE_MS + 8_000);
    const stopped = worker.events().find((e) => e.msg === 'worker stopped');
    expect(stopped).toMatchObject({ handedBack: CONCURRENCY, timedOut: false });

    // Nothing lost, nothing stuck: every job completed or back in wait, none active, failed or delayed.
    for (const account of ['fast', 'slow']) {
      const queue = new Queue(accountQueueName(account), { connection: admin, prefix });
      try {
        const counts = await queue.getJobCounts(
          'completed',
          'waiting',
          'active',
          'failed',
          'delayed',
          'prioritized',
        );
        expect(counts.active, account).toBe(0);
        expect(counts.failed, account).toBe(0);
        expect(counts.delayed, account).toBe(0);
        expect((counts.completed ?? 0) + (counts.waiting ?? 0) + (counts.prioritized ?? 0), account).toBe(
          PER_ACCOUNT,
        );
        if (account === 'slow') expect(counts.completed).toBe(0);
        if (account === 'fast') expect(counts.completed).toBeGreaterThanOrEqual(1);
        // The handed-back jobs ran (attemptsStarted) but used no attempt and no stall allowance.
        const waiting = await queue.getJobs(['waiting', 'prioritized']);
        const started = waiting.filter((j) => j.attemptsStarted > 0);
        if (account === 'slow') expect(started).toHaveLength(CONCURRENCY);
        for (const job of waiting) {
          expect(job.attemptsMade, `job ${job.id}`).toBe(0);
          expect(job.stalledCounter, `job ${job.id}`).toBe(0);
          expect(job.failedReason ?? '', `job ${job.id}`).toBe('');
        }
      } finally {
        await queue.close();
      }
    }

    // Step two: a new worker, with the slow account's upstream now fast.
    sim.setToken(SLOW, { label: 'slow' });
    const next = await startWorker();
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
    expect(results).toHaveLength(2 * PER_ACCOUNT);
    for (const result of results) expect(result.attempts).toBe(1);
    expect((await next.stop('SIGTERM')).code).toBe(0);
    await producer.close();
    await expectNoClientsLeft(admin, prefix);
  });

  it('a second signal exits at once, without waiting for the grace', async () => {
    sim.setToken(SLOW, { label: 'slow', latency: { baseMs: 60_000 } });
    const worker = await startWorker({ HFQ_SHUTDOWN_GRACE_MS: '60000' });
    const other = stack.newProducer();
    try {
      const handle = await other.enqueue(chatJob('slow', 'one more'));
      await waitFor(async () => (await handle.state()) === 'active', 'the job to run');
      const exited = worker.exited;
      worker.child.kill('SIGTERM');
      await worker.waitForLine((l) => l.includes('"stopping: no new jobs'));
      worker.child.kill('SIGTERM');
      const exit = await exited;
      expect(exit.code).toBe(130);
      expect(worker.lines.some((l) => l.includes('second signal'))).toBe(true);
    } finally {
      await other.close();
    }
    await expectNoClientsLeft(admin, prefix);
  });
});
