import { createProducer } from '@hfq/producer';
import type { Job } from '@hfq/shared';
import { type Sim, startSim } from '@hfq/sim';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SpawnedRedis } from '../packages/cli/src/local-redis.js';
import {
  accountQueue,
  chatFor,
  countsOf,
  crashLines,
  duplicatesOf,
  ownRedis,
  perJobModels,
  reportFault,
  requestsByModel,
  waitFor,
} from './support/faults.js';
import { type HfqProcess, startWorkerProcess } from './support/processes.js';
import { adminRedis, expectNoClientsLeft, testPrefix } from './support/redis.js';
import { workerEnv } from './support/stack.js';

/**
 * Fault: Redis SIGKILLed with jobs waiting and active, then restarted on the same
 * port from its append-only file. The worker process must ride it out and reconnect by itself;
 * every job enqueued before the crash completes; while Redis is down, producers fail fast.
 */

const TOKEN = 'hf_faults_redis_restart_0123456789';
const JOBS = 40;
const CONCURRENCY = 4;
/** "Fails fast": an enqueue against a dead Redis settles within this (the producer waits up to 5 s for a reconnect). */
const FAIL_FAST_MS = 8_000;

/** Settles with the rejection and how long it took; a hang ends the race as `hung`. */
async function timedEnqueue(
  enqueue: () => Promise<unknown>,
  hangMs = 20_000,
): Promise<{ ms: number; outcome: 'rejected' | 'resolved' | 'hung'; message: string }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), hangMs);
  });
  try {
    const settled = await Promise.race([
      enqueue().then(
        () => ({ outcome: 'resolved' as const, message: '' }),
        (err: Error) => ({ outcome: 'rejected' as const, message: err.message }),
      ),
      hung.then(() => ({ outcome: 'hung' as const, message: '' })),
    ]);
    return { ms: Date.now() - started, ...settled };
  } finally {
    clearTimeout(timer);
  }
}

describe('fault 4: Redis killed (-9) and restarted from its AOF', () => {
  const prefix = testPrefix('frestart');
  let redis: SpawnedRedis;
  let admin: Redis;
  let sim: Sim;
  let queue: Queue;
  let worker: HfqProcess | undefined;
  let cleanup = () => {};

  beforeAll(async () => {
    redis = await ownRedis({ appendOnly: true });
    admin = adminRedis(redis.url);
    // The admin connection dies with Redis and reconnects; its errors are expected.
    admin.on('error', () => {});
    sim = await startSim({ latency: { baseMs: 1_000 } });
    sim.setToken(TOKEN, { label: 'acme' });
    queue = accountQueue(admin, prefix, 'acme');
  });

  afterAll(async () => {
    await worker?.stop('SIGKILL');
    cleanup();
    await queue?.close();
    await sim?.close();
    await admin?.quit().catch(() => admin.disconnect());
    await redis?.stop();
  });

  it('the worker reconnects and every job enqueued before the crash completes; producers fail fast meanwhile', async () => {
    const stack = workerEnv(sim, {
      redisUrl: redis.url,
      prefix,
      accounts: [{ id: 'acme', tier: 'pro', hfToken: TOKEN, limit: { max: 100, durationMs: 1000 } }],
      concurrency: CONCURRENCY,
      extra: {
        HFQ_LOCK_DURATION_MS: '10000',
        HFQ_STALLED_INTERVAL_MS: '5000',
        HFQ_SHUTDOWN_GRACE_MS: '2000',
      },
    });
    cleanup = stack.cleanup;
    worker = await startWorkerProcess(stack.env);
    const producer = createProducer({ connection: redis.url, prefix });
    const fresh: ReturnType<typeof createProducer>[] = [];
    try {
      const models = perJobModels(sim, 'restart', JOBS + 1);
      const before = models.slice(0, JOBS);
      await producer.enqueueMany(before.map((m) => chatFor('acme', m)));
      await waitFor(
        async () => {
          const c = await countsOf(queue);
          return c.completed >= CONCURRENCY && c.active >= CONCURRENCY - 1 && c.waiting > 0;
        },
        'jobs completed, active and waiting',
        60_000,
      );
      const atCrash = await countsOf(queue);
      await redis.kill('SIGKILL');

      // Redis is down: the producer that was connected, and one created now, both fail fast.
      const late: Job = chatFor('acme', 'faults/never-added');
      const [connected, created] = await Promise.all([
        timedEnqueue(() => producer.enqueue(late)),
        timedEnqueue(() => {
          const p = createProducer({ connection: redis.url, prefix });
          fresh.push(p);
          return p.enqueue(late);
        }),
      ]);
      expect(worker.child.exitCode, 'worker process alive while Redis is down').toBeNull();

      await redis.launch();
      // Every job enqueued before the crash completes, with no help.
      await waitFor(
        async () => (await countsOf(queue).catch(() => ({ completed: -1 }))).completed === JOBS,
        'every job enqueued before the crash to complete',
        120_000,
        250,
      );
      // The same producer works again once Redis is back.
      const after = await producer.enqueue(chatFor('acme', models[JOBS] as string));
      await after.result({ timeoutMs: 30_000 });
      const counts = await countsOf(queue);
      const byModel = requestsByModel(sim, models);
      const duplicated = duplicatesOf(byModel);
      const redisErrors = worker
        .events()
        .filter((e) => /redis|worker error|queue error/i.test(String(e.msg)));
      reportFault({
        fault: '4 Redis kill -9 + AOF restart',
        enqueued: JOBS + 1,
        completed: counts.completed,
        failed: counts.failed,
        duplicated,
        notes: `at the crash: ${atCrash.completed} completed, ${atCrash.active} active, ${atCrash.waiting} waiting; while down, enqueue on the connected producer ${connected.outcome} in ${connected.ms} ms ("${connected.message}"), on a new producer ${created.outcome} in ${created.ms} ms ("${created.message}"); the worker logged ${redisErrors.length} connection errors and reconnected`,
      });

      expect(connected.outcome).toBe('rejected');
      expect(connected.ms).toBeLessThan(FAIL_FAST_MS);
      expect(connected.message).toMatch(/redis/i);
      expect(created.outcome).toBe('rejected');
      expect(created.ms).toBeLessThan(FAIL_FAST_MS);
      expect(created.message).toMatch(/redis/i);
      // Nothing was added while Redis was down.
      expect(sim.received({ model: 'faults/never-added' })).toBe(0);
      expect(counts).toMatchObject({ completed: JOBS + 1, failed: 0, active: 0, waiting: 0, delayed: 0 });
      expect(duplicated).toBeLessThanOrEqual(CONCURRENCY);
      expect(worker.child.exitCode).toBeNull();
      expect(crashLines(worker.lines)).toEqual([]);
    } finally {
      await Promise.all([producer, ...fresh].map((p) => p.close()));
    }
    const exit = await worker.stop('SIGTERM');
    expect(exit.code).toBe(0);
    await expectNoClientsLeft(admin, prefix);
  }, 240_000);
});
