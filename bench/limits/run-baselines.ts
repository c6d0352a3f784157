/**
 * `pnpm bench:limits`: one run of a baseline (plain BullMQ or the retry loop) on the pool of
 * baseline worker processes, timed by BullMQ's queue events.
 */
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { type BaselineRun, BULLMQ_JOB_OPTIONS } from '../support/baselines.js';
import { type ChildNode, startChildren, stopChildren } from '../support/child.js';
import { startProgress } from './measure.js';
import { CONCURRENCY, log, PROCESSES, WORKER_READY_TIMEOUT_MS } from './options.js';
import type { Outcome, RunContext } from './run-context.js';
import type { Scenario } from './scenarios.js';

/** The baseline worker processes: started once, on the first baseline run, and reused (see limits-baseline-worker.ts). */
async function baselineWorkers(ctx: RunContext): Promise<ChildNode[]> {
  if (ctx.baselinePool.workers) return ctx.baselinePool.workers;
  const started = performance.now();
  const workers = await startChildren(
    PROCESSES,
    (i) => ({
      label: `baseline worker ${i + 1}`,
      script: 'bench/limits-baseline-worker.ts',
      env: {},
      ipc: true,
    }),
    'baseline ready',
    WORKER_READY_TIMEOUT_MS,
  );
  ctx.baselinePool.workers = workers;
  ctx.baselinePool.startMs ??= performance.now() - started;
  ctx.baselinePool.stop = ctx.cleanup.add('baseline workers', async () => {
    ctx.baselinePool.workers = undefined;
    ctx.baselinePool.stop = undefined;
    await stopChildren(workers, 5_000);
  });
  return workers;
}

/** End the run on every baseline process; a process that does not answer gets the whole pool restarted for the next run. */
async function endBaselineRun(ctx: RunContext, workers: ChildNode[]): Promise<void> {
  try {
    await Promise.all(workers.map((w) => w.request({ cmd: 'stop' }, 30_000)));
  } catch (err) {
    log(`    baseline workers did not stop cleanly (${(err as Error).message}); starting new ones next time`);
    await ctx.baselinePool.stop?.();
  }
}

export async function runBaseline(
  system: 'bullmq' | 'retry',
  scenario: Scenario,
  ctx: RunContext,
  run: { token: string; prefix: string; capMs: number },
): Promise<Outcome> {
  const { sim } = ctx;
  const queueName = 'bench';
  const workers = await baselineWorkers(ctx);
  const started = performance.now();
  const baselineRun: BaselineRun = {
    mode: system,
    redisUrl: ctx.redisUrl,
    prefix: run.prefix,
    queue: queueName,
    token: run.token,
    routerUrl: sim.routerUrl,
    hubUrl: sim.hubUrl,
    concurrency: CONCURRENCY,
    ...(system === 'bullmq' ? { limit: { ...scenario.configured } } : {}),
  };
  await Promise.all(workers.map((w) => w.request({ cmd: 'start', run: baselineRun }, 60_000)));
  const stopWorkers = ctx.cleanup.add(`${system} run`, () => endBaselineRun(ctx, workers));
  const workerStartMs = performance.now() - started;

  const connection = new Redis(ctx.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(queueName, { connection, prefix: run.prefix });
  const eventsConnection = new Redis(ctx.redisUrl, { maxRetriesPerRequest: null });
  const events = new QueueEvents(queueName, { connection: eventsConnection, prefix: run.prefix });
  const closeQueue = ctx.cleanup.add(`${system} queue`, async () => {
    await events.close();
    await queue.close();
    connection.disconnect();
    eventsConnection.disconnect();
  });
  try {
    await events.waitUntilReady();
    const ids = new Set(ctx.jobs.map((_, i) => `job-${i}`));
    const settled = new Set<string>();
    let completed = 0;
    let failed = 0;
    let last: number | null = null;
    let allDone: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      allDone = resolve;
    });
    const settle = (jobId: string, ok: boolean) => {
      if (!ids.has(jobId) || settled.has(jobId)) return;
      settled.add(jobId);
      if (ok) completed++;
      else failed++;
      last = performance.now();
      if (settled.size === ids.size) allDone();
    };
    events.on('completed', ({ jobId }) => settle(jobId, true));
    events.on('failed', ({ jobId }) => settle(jobId, false));

    const jobOptions = system === 'bullmq' ? BULLMQ_JOB_OPTIONS : { attempts: 1 };
    const t0 = performance.now();
    await queue.addBulk(
      ctx.jobs.map((data, i) => ({
        name: 'feature-extraction',
        data: { model: data.model, inputs: data.inputs },
        opts: { jobId: `job-${i}`, ...jobOptions },
      })),
    );
    const enqueueMs = performance.now() - t0;
    const progress = startProgress(() => settled.size, ids.size, t0);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, run.capMs)))]);
    clearTimeout(timer);
    clearInterval(progress);
    // Events are for timing; the counts in Redis are the truth.
    const counts = await queue.getJobCounts('completed', 'failed');
    completed = Math.max(completed, counts.completed ?? 0);
    failed = Math.max(failed, counts.failed ?? 0);
    const lastResult: number | null = last;
    return {
      completed,
      failed,
      workerStartMs,
      enqueueMs,
      lastResultMs: lastResult === null ? null : lastResult - t0,
    };
  } finally {
    await stopWorkers();
    await closeQueue();
  }
}
