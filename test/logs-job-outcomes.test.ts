import { accountQueueName, JOB_SCHEMA_VERSION, type JobData } from '@hfq/shared/internal';
import { Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatFor, perJobModels } from './support/faults.js';
import { captureLogs, LEVEL } from './support/log-capture.js';
import { redisUrl } from './support/redis.js';
import { type Stack, startStack } from './support/stack.js';
import { waitFor } from './support/wait.js';

/**
 * What the worker's log says about a job's failures: each failed attempt with attempts left is a
 * warn line "attempt N of M failed, retrying in X s"; the failure that ends the job is one error
 * line "job failed"; a job re-delivered after its worker stopped renewing its lock is a warn line.
 * Real Redis, BullMQ and simulator; the log is hfq's pino logger writing into memory.
 */

const ACCOUNTS = ['flaky', 'broken', 'stally'] as const;
const tokenOf = (id: string) => `hf_logs_${id}_0123456789abcdef`;
const ATTEMPTS = 3;
const BACKOFF_MS = 200;

describe('job outcome log lines', () => {
  let stack: Stack;
  const queues = new Map<string, Queue>();
  const logs = captureLogs();
  let stalledJobId: string | undefined;

  /** A job in the account's queue with a short fixed backoff, as a producer with these options would add it. */
  async function add(account: string, jobId: string): Promise<void> {
    const [model] = perJobModels(stack.sim, `${account}-${jobId}`, 1);
    const data: JobData = { v: JOB_SCHEMA_VERSION, job: chatFor(account, model as string) };
    await queues.get(account)?.add('chat-completion', data, {
      jobId,
      attempts: ATTEMPTS,
      backoff: { type: 'fixed', delay: BACKOFF_MS },
    });
  }

  beforeAll(async () => {
    // Shared by the two tests, which read different jobs' lines from one worker's log.
    stack = await startStack({
      label: 'logjob',
      sim: { latency: { baseMs: 0, jitterMs: 0 } },
      tokens: Object.fromEntries(ACCOUNTS.map((id) => [tokenOf(id), { label: id }])),
      accounts: ACCOUNTS.map((id) => ({ id, tier: 'pro' as const, hfToken: tokenOf(id) })),
      teardown: 'caller',
    });
    const { sim, prefix } = stack;
    const admin = stack.redis();
    for (const id of ACCOUNTS) {
      const queue = new Queue(accountQueueName(id), { connection: admin, prefix });
      queue.on('error', () => {});
      queues.set(id, queue);
      stack.defer(() => queue.close());
    }
    // One 503 for the flaky account's job (then it succeeds); three for the broken one's (all its attempts).
    sim.script(tokenOf('flaky'), [{ status: 503 }]);
    sim.script(tokenOf('broken'), [{ status: 503 }, { status: 503 }, { status: 503 }]);

    // A job taken by a worker that then stops renewing its lock (as a killed process would):
    // fetched by hand with a short lock, never extended.
    await add('stally', 'stall-1');
    const dead = new Worker(accountQueueName('stally'), null, {
      connection: { host: new URL(redisUrl()).hostname, port: Number(new URL(redisUrl()).port) },
      prefix,
      lockDuration: 500,
      autorun: false,
    });
    dead.on('error', () => {});
    const taken = await dead.getNextJob('dead-worker-token');
    stalledJobId = taken?.id;
    await dead.close();

    await stack.startWorker({ logger: logs.logger, stalledIntervalMs: 1_000, cockpitFlushMs: 60_000 });
  });

  afterAll(() => stack?.stop());

  it('logs each retried attempt at warn, distinct from the final failure at error', async () => {
    await add('flaky', 'flaky-1');
    await add('broken', 'broken-1');
    const flaky = queues.get('flaky') as Queue;
    const broken = queues.get('broken') as Queue;
    const retries = (jobId: string) =>
      logs.matching(/^attempt \d+ of \d+ failed, retrying/).filter((l) => l.jobId === jobId);
    const finals = (jobId: string) => logs.matching(/^job failed$/).filter((l) => l.jobId === jobId);
    // (The worker logs a failure from BullMQ's `failed` event, which comes after the job's state
    // changed in Redis: wait for the line too.)
    await waitFor(
      async () =>
        (await flaky.getJobState('flaky-1')) === 'completed' &&
        (await broken.getJobState('broken-1')) === 'failed' &&
        finals('broken-1').length > 0,
      'flaky-1 completed and broken-1 failed, with its log line',
    );

    // The flaky job: one failed attempt, retried; it never failed for good.
    expect(retries('flaky-1').map((l) => l.msg)).toEqual([
      `attempt 1 of ${ATTEMPTS} failed, retrying in 0.2 s`,
    ]);
    expect(retries('flaky-1')[0]).toMatchObject({
      level: LEVEL.warn,
      account: 'flaky',
      attempt: 1,
      attempts: ATTEMPTS,
      delayMs: BACKOFF_MS,
    });
    expect(String(retries('flaky-1')[0]?.reason)).toMatch(/503/);
    expect(finals('flaky-1')).toEqual([]);

    // The broken job: two retries at warn, then one final failure at error, after its last attempt.
    expect(retries('broken-1').map((l) => l.msg)).toEqual([
      `attempt 1 of ${ATTEMPTS} failed, retrying in 0.2 s`,
      `attempt 2 of ${ATTEMPTS} failed, retrying in 0.2 s`,
    ]);
    expect(finals('broken-1')).toHaveLength(1);
    expect(finals('broken-1')[0]).toMatchObject({
      level: LEVEL.error,
      account: 'broken',
      attemptsMade: ATTEMPTS,
    });
    expect(String(finals('broken-1')[0]?.reason)).toMatch(/503/);
    const order = logs.lines.filter((l) => l.jobId === 'broken-1').map((l) => l.msg);
    expect(order.indexOf('job failed')).toBe(order.length - 1);
    // No secret in any line.
    for (const id of ACCOUNTS) expect(logs.text()).not.toContain(tokenOf(id));
  });

  it('logs a stalled re-delivery at warn with its job id and account', async () => {
    expect(stalledJobId).toBe('stall-1');
    const stally = queues.get('stally') as Queue;
    await waitFor(async () => (await stally.getJobState('stall-1')) === 'completed', 'stall-1 completed');
    const lines = logs.matching(/^job re-delivered after its worker stopped renewing its lock$/);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: LEVEL.warn, account: 'stally', jobId: 'stall-1' });
    expect((await stally.getJob('stall-1'))?.stalledCounter).toBe(1);
  });
});
