/**
 * `pnpm bench:reuse`: what pay once saves on a run where work repeats (see docs/architecture.md,
 * 'Pay once'), and what content identity costs the producer.
 *
 * 1. `--jobs` embedding jobs (default 100,000) of which `--repeat` (30%) repeat an earlier
 *    input, through the simulator (upstream latency `--base-ms`), one in-process worker:
 *    - `every job paid`: each enqueue its own job (`unique: false`), as before content identity;
 *    - `content ids`: the default: a repeat is the earlier job (one request), no result ledger;
 *    - `content keys + ledger`: each job its own id (a `contentKey` per position, as a CLI line)
 *      with result reuse on: a repeat whose first copy has completed is answered from the ledger.
 *    Upstream requests, estimated spend (the spend ledger), reused results, wall time.
 * 2. Enqueue throughput of `--enqueue` jobs (default 50,000) in `enqueueMany` chunks of 1,000,
 *    no worker: explicit `jobId`s against content ids, alternated `--rounds` times; medians and
 *    the ratio (target: content ids at most 10% slower).
 *
 * Prints markdown tables and writes `.bench-out/reuse.json`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createProducer, type EnqueueOptions } from '@hfq/producer';
import { contentJobId, type Job } from '@hfq/shared';
import { CreditState } from '@hfq/shared/internal';
import { startSim } from '@hfq/sim';
import { startLocalRedis } from '../packages/cli/src/local-redis.js';
import { fixed, integer, markdownTable, percent } from './support/format.js';
import { startInProcessWorker } from './support/in-process-worker.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '100000' },
    repeat: { type: 'string', default: '0.3' },
    'base-ms': { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '64' },
    enqueue: { type: 'string', default: '50000' },
    rounds: { type: 'string', default: '7' },
    /** Only the enqueue throughput (part 2). */
    'enqueue-only': { type: 'boolean', default: false },
  },
});
const JOBS = Number(values.jobs);
const REPEAT = Number(values.repeat);
const BASE_MS = Number(values['base-ms']);
const CONCURRENCY = Number(values.concurrency);
const ENQUEUE = Number(values.enqueue);
const ROUNDS = Number(values.rounds);
const TOKEN = 'hf_bench_reuse_0123456789abcdef';
const MODEL = 'sentence-transformers/all-MiniLM-L6-v2';
const CHUNK = 1_000;

/** A seeded PRNG (mulberry32): the same workload every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The inputs of the run: a share `REPEAT` of them repeat an earlier input, chosen uniformly. */
function workload(): string[] {
  const random = prng(21);
  const inputs: string[] = [];
  let unique = 0;
  for (let i = 0; i < JOBS; i += 1) {
    const earlier =
      inputs.length > 0 && random() < REPEAT ? inputs[Math.floor(random() * inputs.length)] : undefined;
    if (earlier !== undefined) inputs.push(earlier);
    else inputs.push(`benchmark sentence ${unique++} about paying once`);
  }
  return inputs;
}

const job = (inputs: string): Job => ({ account: 'bench', task: 'feature-extraction', model: MODEL, inputs });

interface RunResult {
  mode: string;
  jobs: number;
  requests: number;
  spendUsd: number;
  reused: number;
  seconds: number;
}

type Mode = 'every job paid' | 'content ids' | 'content keys + ledger';

async function runOnce(
  redisUrl: string,
  sim: Awaited<ReturnType<typeof startSim>>,
  mode: Mode,
  inputs: string[],
): Promise<RunResult> {
  const prefix = `bench-reuse-${Date.now().toString(36)}-${mode.length}`;
  const account = {
    id: 'bench',
    tier: 'pro' as const,
    hfToken: TOKEN,
    limit: { max: 5_000, durationMs: 1000 },
    ...(mode === 'content keys + ledger'
      ? { resultReuse: { ttlMs: 3_600_000, maxBytes: 256 * 1024 * 1024 } }
      : {}),
  };
  sim.resetStats();
  const { worker, producer, redis } = await startInProcessWorker({
    redisUrl,
    prefix,
    account,
    sim,
    concurrency: CONCURRENCY,
    name: 'bench-reuse',
  });
  try {
    const options = (i: number): EnqueueOptions =>
      mode === 'every job paid' ? { unique: false } : mode === 'content ids' ? {} : { contentKey: String(i) };
    const started = performance.now();
    const ids = new Set<string>();
    for (let from = 0; from < inputs.length; from += CHUNK) {
      const handles = await producer.enqueueMany(
        inputs.slice(from, from + CHUNK).map((text, k) => ({ job: job(text), options: options(from + k) })),
      );
      for (const h of handles) ids.add(h.id);
    }
    const queue = producer.queue('bench');
    for (;;) {
      const { completed = 0, failed = 0 } = await queue.getJobCounts('completed', 'failed');
      if (completed + failed >= ids.size) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = (performance.now() - started) / 1000;
    await worker.close(); // flushes the spend recorder
    const spend = await new CreditState(redis, prefix).spend('account:bench', Date.now());
    return {
      mode,
      jobs: inputs.length,
      requests: sim.received({ route: 'router' }),
      spendUsd: spend.hfRouterUsd,
      reused: spend.reusedRequests,
      seconds,
    };
  } finally {
    await worker.close();
    await producer.close();
    await redis.quit();
  }
}

/** The producer's own CPU per job of each counted `enqueueRate`, µs (less moved by other processes than wall time). */
const cpuPerJob: Record<'explicit ids' | 'content ids', number[]> = { 'explicit ids': [], 'content ids': [] };

/** Jobs per second of enqueueing `ENQUEUE` jobs with explicit ids or content ids (no worker). */
async function enqueueRate(
  redisUrl: string,
  kind: 'explicit ids' | 'content ids',
  round: number,
): Promise<number> {
  const prefix = `bench-reuse-enq-${Date.now().toString(36)}-${round}-${kind.length}`;
  const producer = createProducer({ connection: redisUrl, prefix });
  try {
    const started = performance.now();
    const cpu = process.cpuUsage();
    for (let from = 0; from < ENQUEUE; from += CHUNK) {
      await producer.enqueueMany(
        Array.from({ length: Math.min(CHUNK, ENQUEUE - from) }, (_, k) => {
          const i = from + k;
          const text = `enqueue sentence ${i} of round ${round}`;
          return { job: job(text), options: kind === 'explicit ids' ? { jobId: `j-${round}-${i}` } : {} };
        }),
      );
    }
    const used = process.cpuUsage(cpu);
    if (round >= 0) cpuPerJob[kind].push((used.user + used.system) / ENQUEUE);
    return ENQUEUE / ((performance.now() - started) / 1000);
  } finally {
    await producer.queue('bench').obliterate({ force: true });
    await producer.close();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

async function main(): Promise<void> {
  const redis = await startLocalRedis();
  const sim = await startSim({ latency: { baseMs: BASE_MS, jitterMs: 0, perItemMs: 0 } });
  sim.setToken(TOKEN, { label: 'bench' });
  try {
    // 2. Enqueue throughput first, on a fresh Redis, alternating the two kinds after one warm-up
    // round of each (not counted: the first adds pay for script loading and JIT).
    const rates: Record<'explicit ids' | 'content ids', number[]> = { 'explicit ids': [], 'content ids': [] };
    await enqueueRate(redis.url, 'explicit ids', -1);
    await enqueueRate(redis.url, 'content ids', -1);
    // The id derivation alone, per job (canonical JSON + SHA-256), outside Redis.
    const sample = Array.from({ length: 20_000 }, (_, i) => job(`enqueue sentence ${i} of round 0`));
    const hashStarted = performance.now();
    for (const j of sample) contentJobId(j);
    const hashMicros = ((performance.now() - hashStarted) * 1000) / sample.length;
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const kind of round % 2
        ? (['content ids', 'explicit ids'] as const)
        : (['explicit ids', 'content ids'] as const)) {
        rates[kind].push(await enqueueRate(redis.url, kind, round));
      }
    }
    const explicit = median(rates['explicit ids']);
    const content = median(rates['content ids']);

    // 1. The three runs of the same workload.
    const inputs = workload();
    const runs: RunResult[] = [];
    for (const mode of ['every job paid', 'content ids', 'content keys + ledger'] as const) {
      if (!values['enqueue-only']) runs.push(await runOnce(redis.url, sim, mode, inputs));
    }
    const base = runs[0] as RunResult;
    if (runs.length > 0)
      console.log(
        `\n${integer(JOBS)} embedding jobs, ${percent(REPEAT, 0)} repeating an earlier input (${integer(new Set(inputs).size)} distinct), upstream ${BASE_MS} ms, concurrency ${CONCURRENCY}\n`,
      );
    if (runs.length > 0)
      console.log(
        markdownTable(
          [
            'run',
            'upstream requests',
            'vs every job paid',
            'estimated spend',
            'reused from ledger',
            'wall time',
            'jobs/s',
          ],
          runs.map((r) => [
            r.mode,
            integer(r.requests),
            percent(r.requests / base.requests, 1),
            `$${fixed(r.spendUsd, 4)}`,
            integer(r.reused),
            `${fixed(r.seconds, 1)} s`,
            fixed(r.jobs / r.seconds, 0),
          ]),
          ['l'],
        ),
      );
    console.log(
      `\nEnqueue ${integer(ENQUEUE)} jobs in enqueueMany(${CHUNK}), no worker, median of ${ROUNDS} alternated rounds\n`,
    );
    console.log(
      markdownTable(
        ['ids', 'jobs/s (median)', 'rounds', 'vs explicit ids'],
        [
          [
            'explicit jobId',
            fixed(explicit, 0),
            rates['explicit ids'].map((r) => fixed(r, 0)).join(', '),
            '1.00',
          ],
          [
            'content ids',
            fixed(content, 0),
            rates['content ids'].map((r) => fixed(r, 0)).join(', '),
            fixed(content / explicit, 2),
          ],
        ],
        ['l'],
      ),
    );
    const cpuExplicit = median(cpuPerJob['explicit ids']);
    const cpuContent = median(cpuPerJob['content ids']);
    console.log(
      `\nproducer CPU per job (median): explicit ids ${fixed(cpuExplicit, 1)} µs, content ids ${fixed(cpuContent, 1)} µs (×${fixed(cpuContent / cpuExplicit, 2)}); content id derivation alone: ${fixed(hashMicros, 1)} µs per job`,
    );
    console.log(
      `\ncontent ids enqueue at ${percent(content / explicit, 1)} of explicit ids' rate (target ≥ 90%): ${content / explicit >= 0.9 ? 'met' : 'MISSED'}`,
    );
    mkdirSync('.bench-out', { recursive: true });
    writeFileSync(
      '.bench-out/reuse.json',
      `${JSON.stringify({ jobs: JOBS, repeat: REPEAT, runs, enqueue: { jobs: ENQUEUE, rates, explicit, content, hashMicros, cpuPerJob } }, null, 2)}\n`,
    );
  } finally {
    await sim.close();
    await redis.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
