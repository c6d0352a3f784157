/**
 * A baseline worker process for `pnpm bench:limits`: what people build without hfq.
 *
 * - mode `bullmq`: a BullMQ `Worker` with `limiter: { max, duration }` (BullMQ's own limiter,
 *   global per queue across processes); a 429 throws a plain Error, so BullMQ retries the job
 *   with the backoff set on the job (the benchmark adds jobs with `attempts: 20`, exponential
 *   backoff from 1 s).
 * - mode `retry`: a BullMQ `Worker` with no limiter; the processor retries 429s itself, in the
 *   style of `p-retry`: up to 10 tries, waiting 500 ms × 2^(n-1) × (1 + random) after the n-th
 *   429 (`support/baselines.ts`), shared with no other request.
 *
 * Both call the simulator through the official `@huggingface/inference` client, as hfq does, and
 * ignore Retry-After (neither `p-retry` nor BullMQ's backoff reads it).
 *
 * Run by the benchmark with an IPC channel: the process starts once and serves one run after
 * another (`{ cmd: 'start', run }` → `{ reply: 'start' }`, `{ cmd: 'stop' }` → `{ reply: 'stop' }`,
 * where stop aborts the requests and waits in flight and closes the worker), so a run does not
 * pay for starting processes. Run by hand, it takes one run from the environment: `--mode
 * bullmq|retry`, REDIS_URL, BENCH_PREFIX, BENCH_QUEUE, BENCH_TOKEN, HF_ROUTER_URL, HF_HUB_URL,
 * BENCH_CONCURRENCY, and for `bullmq` BENCH_LIMIT_MAX and BENCH_LIMIT_DURATION_MS.
 *
 * Prints `baseline ready` once it can take work; SIGTERM stops the run and exits.
 */
import { parseArgs } from 'node:util';
import { type Job, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { type BaselineRun, RETRY_POLICY, retryDelayMs } from './support/baselines.js';
import { httpStatusOf, simClient } from './support/hf-client.js';

interface BenchJobData {
  model: string;
  inputs: string;
}

/** Resolves after `ms`, or rejects as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** One run: a BullMQ worker on the run's queue, until `stop`. */
async function startRun(run: BaselineRun): Promise<{ stop: () => Promise<void> }> {
  const client = simClient(run.token, { routerUrl: run.routerUrl, hubUrl: run.hubUrl });
  const stopping = new AbortController();

  const call = async (job: Job<BenchJobData>, signal: AbortSignal | undefined) => {
    const output = await client.featureExtraction(
      { model: job.data.model, inputs: job.data.inputs },
      { signal: signal ? AbortSignal.any([signal, stopping.signal]) : stopping.signal },
    );
    return { dims: Array.isArray(output) ? output.length : 0 };
  };

  const processor =
    run.mode === 'bullmq'
      ? async (job: Job<BenchJobData>, _token?: string, signal?: AbortSignal) => {
          try {
            return await call(job, signal);
          } catch (err) {
            // A plain error: BullMQ retries the job with its attempts and backoff.
            if (httpStatusOf(err) === 429) throw new Error('upstream 429');
            throw err;
          }
        }
      : async (job: Job<BenchJobData>, _token?: string, signal?: AbortSignal) => {
          for (let attempt = 1; ; attempt++) {
            try {
              return { ...(await call(job, signal)), tries: attempt };
            } catch (err) {
              if (httpStatusOf(err) !== 429 || attempt >= RETRY_POLICY.tries) throw err;
              await sleep(retryDelayMs(attempt), stopping.signal);
            }
          }
        };

  const connection = new Redis(run.redisUrl, { maxRetriesPerRequest: null });
  const worker = new Worker<BenchJobData>(run.queue, processor, {
    connection,
    prefix: run.prefix,
    concurrency: run.concurrency,
    ...(run.mode === 'bullmq' && run.limit
      ? { limiter: { max: run.limit.max, duration: run.limit.durationMs } }
      : {}),
  });
  worker.on('error', (err) => process.stderr.write(`worker error: ${err.message}\n`));
  await worker.waitUntilReady();
  return {
    stop: async () => {
      stopping.abort(new Error('baseline run stopping'));
      await worker.close();
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}

function runFromEnv(): BaselineRun {
  const { values } = parseArgs({ options: { mode: { type: 'string' } } });
  const env = (name: string): string => {
    const value = process.env[name];
    if (value === undefined || value === '') throw new Error(`${name} is required`);
    return value;
  };
  const mode = values.mode;
  if (mode !== 'bullmq' && mode !== 'retry') throw new Error('--mode must be "bullmq" or "retry"');
  return {
    mode,
    redisUrl: env('REDIS_URL'),
    prefix: env('BENCH_PREFIX'),
    queue: env('BENCH_QUEUE'),
    token: env('BENCH_TOKEN'),
    routerUrl: env('HF_ROUTER_URL'),
    hubUrl: env('HF_HUB_URL'),
    concurrency: Number(env('BENCH_CONCURRENCY')),
    ...(mode === 'bullmq'
      ? { limit: { max: Number(env('BENCH_LIMIT_MAX')), durationMs: Number(env('BENCH_LIMIT_DURATION_MS')) } }
      : {}),
  };
}

async function main(): Promise<void> {
  let current: { stop: () => Promise<void> } | undefined;
  let exiting = false;
  const exit = () => {
    if (exiting) process.exit(130);
    exiting = true;
    void (current?.stop() ?? Promise.resolve()).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);

  const send = process.send?.bind(process);
  if (!send) {
    current = await startRun(runFromEnv());
    process.stdout.write(`${JSON.stringify({ msg: 'baseline ready', pid: process.pid })}\n`);
    return;
  }
  // Commands are handled one at a time, in order.
  let queue = Promise.resolve();
  process.on('message', (message: { cmd?: string; run?: BaselineRun }) => {
    queue = queue.then(async () => {
      try {
        if (message.cmd === 'start' && message.run) {
          await current?.stop();
          current = await startRun(message.run);
        } else if (message.cmd === 'stop') {
          await current?.stop();
          current = undefined;
        } else {
          throw new Error(`unknown command ${JSON.stringify(message)}`);
        }
        send({ reply: message.cmd });
      } catch (err) {
        send({ reply: message.cmd, error: (err as Error).message });
      }
    });
  });
  process.on('disconnect', exit);
  process.stdout.write(`${JSON.stringify({ msg: 'baseline ready', pid: process.pid })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
