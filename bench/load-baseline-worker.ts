/**
 * The baseline worker process for `pnpm bench:load`: a plain BullMQ `Worker` (no limiter, no
 * permit, no failover) whose processor calls the simulator through the same official
 * `@huggingface/inference` client as hfq, with the same `fetch` rewrite (`rewriteUrl` from
 * `@hfq/worker`, via `support/hf-client.ts`). What hfq costs is measured against this.
 *
 * Configured through the environment: REDIS_URL, BENCH_PREFIX, BENCH_QUEUE, BENCH_TOKEN,
 * HF_ROUTER_URL, HF_HUB_URL, BENCH_CONCURRENCY. Prints `baseline ready` once it takes jobs;
 * SIGTERM closes the worker (in-flight jobs finish) and its connection.
 */
import { type Job, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { simClient } from './support/hf-client.js';

interface LoadJobData {
  model: string;
  inputs: string;
}

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is required`);
  return value;
}

async function main(): Promise<void> {
  const concurrency = Number(env('BENCH_CONCURRENCY'));
  if (!Number.isInteger(concurrency) || concurrency <= 0) {
    throw new Error('BENCH_CONCURRENCY must be a positive integer');
  }
  const client = simClient(env('BENCH_TOKEN'), {
    routerUrl: env('HF_ROUTER_URL'),
    hubUrl: env('HF_HUB_URL'),
  });
  // The output is the job's return value, as hfq stores the client's output in its result.
  const processor = (job: Job<LoadJobData>, _token?: string, signal?: AbortSignal) =>
    client.featureExtraction(
      { model: job.data.model, inputs: job.data.inputs },
      signal ? { signal } : undefined,
    );

  const connection = new Redis(env('REDIS_URL'), { maxRetriesPerRequest: null });
  const worker = new Worker<LoadJobData>(env('BENCH_QUEUE'), processor, {
    connection,
    prefix: env('BENCH_PREFIX'),
    concurrency,
  });
  worker.on('error', (err) => process.stderr.write(`worker error: ${err.message}\n`));
  await worker.waitUntilReady();
  process.stdout.write(`${JSON.stringify({ msg: 'baseline ready', pid: process.pid })}\n`);

  let stopped = false;
  const stop = () => {
    if (stopped) process.exit(130);
    stopped = true;
    void worker
      .close()
      .then(() => connection.quit())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
