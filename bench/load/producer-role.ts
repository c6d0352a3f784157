/**
 * The producer of one load run, a child process of its own (bench/load.ts with `--role producer`)
 * so that its peak memory is its own: it enqueues in chunks, keeps no result promises, and polls the
 * queue's counts until every job is done, then prints one JSON line (`ProducerReport`).
 */
import { createProducer } from '@hfq/producer';
import { DEFAULT_ATTEMPTS, DEFAULT_BACKOFF, DEFAULT_RETENTION } from '@hfq/shared';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { integer } from '../support/format.js';
import { peakRssBytes, readRedis } from '../support/readings.js';
import {
  ACCOUNT,
  BASELINE_QUEUE,
  CAP_S,
  CHUNK,
  JOBS,
  log,
  MODEL,
  POLL_MS,
  type SystemId,
} from './options.js';

export interface ProducerReport {
  msg: 'producer done';
  system: SystemId;
  jobs: number;
  completed: number;
  failed: number;
  finished: boolean;
  enqueueMs: number;
  /** Enqueue start → the last job's `finishedOn`. */
  elapsedMs: number;
  producerPeakRssBytes: number | null;
  producerCpuSeconds: number;
  redis: { commands: number; cpuSeconds: number; memoryGrowthBytes: number; calls: Record<string, number> };
}

export const loadJob = (i: number) => ({
  account: ACCOUNT,
  task: 'feature-extraction' as const,
  model: MODEL,
  inputs: `load text ${i}`,
});

/** The same options hfq's producer gives every job, for the baseline's `addBulk`. */
export const BASELINE_JOB_OPTIONS = {
  attempts: DEFAULT_ATTEMPTS,
  backoff: { ...DEFAULT_BACKOFF },
  removeOnComplete: { ...DEFAULT_RETENTION.removeOnComplete },
  removeOnFail: { ...DEFAULT_RETENTION.removeOnFail },
};

export async function producerRole(): Promise<void> {
  const system = process.env.BENCH_SYSTEM as SystemId;
  const url = process.env.REDIS_URL ?? '';
  const prefix = process.env.BENCH_PREFIX ?? '';
  if (!['hfq', 'baseline'].includes(system) || !url || !prefix) throw new Error('producer: bad environment');
  const stats = new Redis(url, { maxRetriesPerRequest: null });
  const baselineConnection =
    system === 'baseline' ? new Redis(url, { maxRetriesPerRequest: null }) : undefined;
  const producer = system === 'hfq' ? createProducer({ connection: url, prefix }) : undefined;
  const queue = producer
    ? producer.queue(ACCOUNT)
    : new Queue(BASELINE_QUEUE, { connection: baselineConnection as Redis, prefix });
  try {
    await queue.getJobCounts('completed'); // connections up before the first reading
    const before = await readRedis(stats);
    const cpuBefore = process.cpuUsage();
    const t0 = Date.now();
    for (let start = 0; start < JOBS; start += CHUNK) {
      const jobs = Array.from({ length: Math.min(CHUNK, JOBS - start) }, (_, i) => loadJob(start + i));
      if (producer) {
        await producer.enqueueMany(jobs); // the handles are dropped: results are counted in Redis
      } else {
        await queue.addBulk(
          jobs.map((job) => ({
            name: job.task,
            data: { model: job.model, inputs: job.inputs },
            opts: BASELINE_JOB_OPTIONS,
          })),
        );
      }
    }
    const enqueueMs = Date.now() - t0;
    const deadline = t0 + CAP_S * 1000;
    let counts: { completed: number; failed: number } = { completed: 0, failed: 0 };
    let nextLog = Date.now() + 15_000;
    for (;;) {
      const c = await queue.getJobCounts('completed', 'failed');
      counts = { completed: c.completed ?? 0, failed: c.failed ?? 0 };
      if (counts.completed + counts.failed >= JOBS || Date.now() > deadline) break;
      if (Date.now() > nextLog) {
        log(`    … ${integer(counts.completed + counts.failed)}/${integer(JOBS)} done`);
        nextLog += 15_000;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const after = await readRedis(stats);
    const cpu = process.cpuUsage(cpuBefore);
    // The exact end: the latest finishedOn (the score of the completed and failed sets).
    const keyOf = (state: string) => `${prefix}:${queue.name}:${state}`;
    const last = await Promise.all(
      ['completed', 'failed'].map(async (state) =>
        Number((await stats.zrevrange(keyOf(state), 0, 0, 'WITHSCORES'))[1] ?? 0),
      ),
    );
    const lastFinishedOn = Math.max(...last);
    const calls: Record<string, number> = {};
    for (const [name, n] of Object.entries(after.calls)) {
      const delta = n - (before.calls[name] ?? 0);
      if (delta > 0) calls[name] = delta;
    }
    const report: ProducerReport = {
      msg: 'producer done',
      system,
      jobs: JOBS,
      ...counts,
      finished: counts.completed + counts.failed >= JOBS,
      enqueueMs,
      elapsedMs: (lastFinishedOn > 0 ? lastFinishedOn : Date.now()) - t0,
      producerPeakRssBytes: peakRssBytes('self'),
      producerCpuSeconds: (cpu.user + cpu.system) / 1e6,
      redis: {
        commands: after.totalCommands - before.totalCommands,
        cpuSeconds: after.cpuSeconds - before.cpuSeconds,
        memoryGrowthBytes: after.usedMemory - before.usedMemory,
        calls,
      },
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    await producer?.close();
    if (!producer) await queue.close();
    baselineConnection?.disconnect();
    stats.disconnect();
  }
}
