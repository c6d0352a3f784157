import { createProducer } from '@hfq/producer';
import { type Sim, startSim } from '@hfq/sim';
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
import { TcpProxy } from './support/tcp-proxy.js';

/**
 * Fault: the workers' Redis connections die under them (`CLIENT KILL`), or the path to
 * Redis goes half-open (a proxy that stops forwarding without closing anything) and then comes
 * back or is cut. Worker processes are real; they must not crash, leave no rejection unhandled
 * (a Node process exits on one), and carry on by themselves.
 */

const CONCURRENCY = 4;

let redis: SpawnedRedis;
let admin: Redis;
let sim: Sim;
const processes: HfqProcess[] = [];
const proxies: TcpProxy[] = [];
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  redis = await ownRedis();
  admin = adminRedis(redis.url);
  sim = await startSim({ latency: { baseMs: 400 } });
});

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop('SIGKILL')));
  await Promise.all(proxies.map((p) => p.close()));
  for (const cleanup of cleanups) cleanup();
  await sim?.close();
  await admin?.quit();
  await redis?.stop();
});

async function startWorker(
  prefix: string,
  token: string,
  redisUrl: string,
  extra: Record<string, string> = {},
): Promise<HfqProcess> {
  const stack = workerEnv(sim, {
    redisUrl,
    prefix,
    accounts: [{ id: 'acme', tier: 'pro', hfToken: token, limit: { max: 100, durationMs: 1000 } }],
    concurrency: CONCURRENCY,
    extra: { HFQ_SHUTDOWN_GRACE_MS: '2000', ...extra },
  });
  cleanups.push(stack.cleanup);
  const proc = await startWorkerProcess(stack.env);
  processes.push(proc);
  return proc;
}

/** Completed-count of the account's queue, read on the admin connection (never cut). */
async function completedOf(prefix: string): Promise<number> {
  const queue = accountQueue(admin, prefix, 'acme');
  try {
    return (await countsOf(queue)).completed;
  } finally {
    await queue.close();
  }
}

function expectAlive(proc: HfqProcess): void {
  expect(proc.child.exitCode, 'worker process exited').toBeNull();
  expect(crashLines(proc.lines)).toEqual([]);
}

describe('fault 5: Redis connections killed or half-open', () => {
  it('CLIENT KILL of every worker connection, three times mid-run: the worker reconnects, nothing lost', async () => {
    const prefix = testPrefix('fckill');
    const token = 'hf_faults_client_kill_0123456789ab';
    sim.setToken(token, { label: 'client-kill' });
    const JOBS = 60;
    const worker = await startWorker(prefix, token, redis.url);
    const producer = createProducer({ connection: redis.url, prefix });
    const killed: number[] = [];
    try {
      const models = perJobModels(sim, 'client-kill', JOBS);
      await producer.enqueueMany(models.map((m) => chatFor('acme', m)));
      for (let round = 1; round <= 3; round++) {
        await waitFor(async () => (await completedOf(prefix)) >= round * 8, `progress before kill ${round}`);
        // Every normal client but this admin one: the worker's (and the producer's) connections.
        killed.push(Number(await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes')));
      }
      await waitFor(async () => (await completedOf(prefix)) === JOBS, 'every job to complete', 90_000, 200);
      const queue = accountQueue(admin, prefix, 'acme');
      const counts = await countsOf(queue).finally(() => queue.close());
      const duplicated = duplicatesOf(requestsByModel(sim, models));
      const errors = worker.events().filter((e) => Number(e.level) >= 40).length;
      reportFault({
        fault: '5a CLIENT KILL TYPE normal ×3',
        enqueued: JOBS,
        completed: counts.completed,
        failed: counts.failed,
        duplicated,
        notes: `connections killed per round ${killed.join('/')}; the worker logged ${errors} warnings/errors, reconnected and went on`,
      });
      expect(killed.every((n) => n >= 3)).toBe(true);
      expect(counts).toMatchObject({ completed: JOBS, failed: 0, active: 0, waiting: 0, delayed: 0 });
      expect(duplicated).toBeLessThanOrEqual(CONCURRENCY);
      expectAlive(worker);
      // The producer's own connection was killed too: it reconnects and enqueues again.
      const one = await producer.enqueue(
        chatFor('acme', perJobModels(sim, 'client-kill-after', 1)[0] as string),
      );
      expect((await one.result({ timeoutMs: 30_000 })).attempts).toBe(1);
    } finally {
      await producer.close();
    }
    expect((await worker.stop('SIGTERM')).code).toBe(0);
    await expectNoClientsLeft(admin, prefix);
  });

  it('a half-open path (proxy paused) that comes back: no progress while paused, the worker resumes by itself', async () => {
    const prefix = testPrefix('fpause');
    const token = 'hf_faults_proxy_pause_0123456789ab';
    sim.setToken(token, { label: 'pause' });
    const JOBS = 48;
    const proxy = await TcpProxy.start({ port: redis.port });
    proxies.push(proxy);
    const worker = await startWorker(prefix, token, proxy.redisUrl);
    const producer = createProducer({ connection: redis.url, prefix });
    try {
      const models = perJobModels(sim, 'pause', JOBS);
      await producer.enqueueMany(models.map((m) => chatFor('acme', m)));
      await waitFor(async () => (await completedOf(prefix)) >= 8, 'progress before the pause');

      proxy.pause();
      // What was already on its way settles; after that nothing moves for 3 s.
      await new Promise((r) => setTimeout(r, 500));
      const pausedAt = await completedOf(prefix);
      await new Promise((r) => setTimeout(r, 3_000));
      const pausedEnd = await completedOf(prefix);
      expectAlive(worker);
      proxy.resume();

      await waitFor(async () => (await completedOf(prefix)) === JOBS, 'every job to complete', 90_000, 200);
      const queue = accountQueue(admin, prefix, 'acme');
      const counts = await countsOf(queue).finally(() => queue.close());
      const duplicated = duplicatesOf(requestsByModel(sim, models));
      reportFault({
        fault: '5b half-open 3.5 s, then resumed',
        enqueued: JOBS,
        completed: counts.completed,
        failed: counts.failed,
        duplicated,
        notes: `completed stayed at ${pausedAt} → ${pausedEnd} while paused; ${proxy.accepted} proxy connections in all (no reconnect needed)`,
      });
      expect(pausedEnd).toBe(pausedAt);
      expect(pausedAt).toBeLessThan(JOBS);
      expect(counts).toMatchObject({ completed: JOBS, failed: 0, active: 0, waiting: 0, delayed: 0 });
      expect(duplicated).toBe(0);
      expectAlive(worker);
    } finally {
      await producer.close();
    }
    expect((await worker.stop('SIGTERM')).code).toBe(0);
    await expectNoClientsLeft(admin, prefix);
  });

  it('a half-open path longer than the lock, then cut: another worker takes over its jobs; it reconnects, no crash', async () => {
    const prefix = testPrefix('fcut');
    // One token per process, so the simulator's log tells which one sent each request.
    const behindToken = 'hf_faults_proxy_cut_behind_012345';
    const directToken = 'hf_faults_proxy_cut_direct_012345';
    sim.setToken(behindToken, { label: 'behind' });
    sim.setToken(directToken, { label: 'direct' });
    const JOBS = 60;
    const LOCKS = { HFQ_LOCK_DURATION_MS: '2000', HFQ_STALLED_INTERVAL_MS: '1000' };
    const proxy = await TcpProxy.start({ port: redis.port });
    proxies.push(proxy);
    const [behind, direct] = await Promise.all([
      startWorker(prefix, behindToken, proxy.redisUrl, LOCKS),
      startWorker(prefix, directToken, redis.url, LOCKS),
    ]);
    const producer = createProducer({ connection: redis.url, prefix });
    try {
      const models = perJobModels(sim, 'cut', JOBS);
      await producer.enqueueMany(models.map((m) => chatFor('acme', m)));
      await waitFor(async () => (await completedOf(prefix)) >= 8, 'progress before the pause');

      proxy.pause();
      const pausedAt = await completedOf(prefix);
      const pauseStarted = Date.now();
      // Until the stuck worker's locks expire and the other worker completes one of its jobs.
      const watch = accountQueue(admin, prefix, 'acme');
      await waitFor(
        async () => (await watch.getCompleted()).some((j) => j.stalledCounter > 0),
        'the direct worker to take over a job of the stuck one',
        30_000,
        200,
      ).finally(() => watch.close());
      const pausedForS = ((Date.now() - pauseStarted) / 1000).toFixed(1);
      const duringPause = (await completedOf(prefix)) - pausedAt;
      const acceptedBeforeCut = proxy.accepted;
      proxy.cut();
      await waitFor(() => proxy.accepted > acceptedBeforeCut, 'the worker behind the proxy to reconnect');

      await waitFor(async () => (await completedOf(prefix)) === JOBS, 'every job to complete', 90_000, 200);
      // The reconnected worker works again: it takes part in a second round.
      const more = perJobModels(sim, 'cut-after', 16);
      const behindBefore = sim.received({ tokenLabel: 'behind', status: 200 });
      await producer.enqueueMany(more.map((m) => chatFor('acme', m)));
      await waitFor(
        async () => (await completedOf(prefix)) === JOBS + more.length,
        'the second round',
        60_000,
        200,
      );
      const queue = accountQueue(admin, prefix, 'acme');
      const counts = await countsOf(queue).finally(() => queue.close());
      const jobs = await queue.getCompleted(0, JOBS + more.length);
      const redelivered = jobs.filter((j) => j.stalledCounter > 0).length;
      const duplicated = duplicatesOf(requestsByModel(sim, [...models, ...more]));
      const secondRound = sim.received({ tokenLabel: 'behind', status: 200 }) - behindBefore;
      const complaints = [
        ...new Set(
          behind
            .events()
            .filter((e) => Number(e.level) >= 40)
            .map((e) => `${e.msg}: ${String(e.err ?? e.reason ?? '').slice(0, 80)}`),
        ),
      ];
      reportFault({
        fault: `5c half-open ${pausedForS} s (> 2 s lock), then cut`,
        enqueued: JOBS + more.length,
        completed: counts.completed,
        failed: counts.failed,
        duplicated,
        notes: `the direct worker completed ${duringPause} jobs during the pause, ${redelivered} of them re-delivered from the stuck worker; ${proxy.accepted - acceptedBeforeCut} reconnections after the cut; in a second round of ${more.length} jobs, the reconnected worker answered ${secondRound}; it logged: ${complaints.join(' | ') || 'nothing'}`,
      });
      expect(duringPause).toBeGreaterThan(0);
      expect(secondRound).toBeGreaterThan(0);
      expect(redelivered).toBeGreaterThanOrEqual(1);
      expect(redelivered).toBeLessThanOrEqual(CONCURRENCY);
      expect(counts).toMatchObject({
        completed: JOBS + more.length,
        failed: 0,
        active: 0,
        waiting: 0,
        delayed: 0,
      });
      expect(duplicated).toBeLessThanOrEqual(CONCURRENCY);
      expectAlive(behind);
      expectAlive(direct);
    } finally {
      await producer.close();
    }
    const exits = await Promise.all([behind.stop('SIGTERM'), direct.stop('SIGTERM')]);
    expect(exits.map((e) => e.code)).toEqual([0, 0]);
    await expectNoClientsLeft(admin, prefix);
  });
});
