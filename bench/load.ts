/**
 * `pnpm bench:load` (issue 7, item 10): what hfq costs at volume, against plain BullMQ.
 *
 * 100,000 feature-extraction jobs (`--quick`: 10,000) through 4 worker processes × concurrency 32
 * against the simulator at zero latency, twice, on one Redis:
 *
 * 1. **hfq**: `hfq worker` processes; the account's limit is 100,000 per second, high enough never
 *    to bind, so every job still takes a permit from the domain limiter (the pacing path runs).
 * 2. **plain BullMQ**: `bench/load-baseline-worker.ts` processes, a BullMQ `Worker` with no limiter
 *    calling the same simulator through the same `@huggingface/inference` client and URL rewrite.
 *
 * Both get the same job options (hfq's attempts, backoff and retention). The simulator runs as its
 * own process (`hfq sim`) so that it shares no event loop with the producer; its CPU is reported to
 * show whether it was the bottleneck. Each run's producer is a child process of its own (this file
 * with `--role producer`), so its peak memory is its own: it enqueues in chunks, keeps no result
 * promises, and polls the queue's counts until every job is done.
 *
 * Figures per system: jobs per second (enqueue start → last job finished, from the jobs' own
 * `finishedOn`), producer and worker peak RSS (VmHWM), Redis commands per job (`INFO stats`
 * total_commands_processed before and after, and which commands from `INFO commandstats`), CPU per
 * job (workers, simulator, Redis, producer). Prints the ratios hfq ÷ baseline for throughput
 * (target ≥ 0.8) and commands per job (target ≤ 1.5) and writes `.bench-out/load.json` and
 * `.bench-out/load.md`. `BENCH_WORKER_NODE_OPTIONS` is passed to every worker as NODE_OPTIONS
 * (for example `--import` of a profiler).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createProducer } from '@hfq/producer';
import { type AccountConfigInput, DEFAULT_ATTEMPTS, DEFAULT_BACKOFF, DEFAULT_RETENTION } from '@hfq/shared';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startLocalRedis } from '../packages/cli/src/local-redis.js';
import { ChildNode, startChildren, stopChildren } from './support/child.js';
import { Cleanup } from './support/cleanup.js';
import { fixed, integer, markdownTable } from './support/format.js';
import { clientVersion } from './support/hf-client.js';
import { deletePrefix } from './support/redis-prefix.js';

// ─── options ────────────────────────────────────────────────────────────────────────────────

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    jobs: { type: 'string' },
    processes: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '32' },
    systems: { type: 'string', default: 'baseline,hfq' },
    chunk: { type: 'string', default: '5000' },
    /** Runs of each system, interleaved (the order flips each round); the median run counts. */
    rounds: { type: 'string' },
    /** Longest a run may take, seconds. */
    cap: { type: 'string' },
    /** Internal: `producer` runs one system's producer (a child of the benchmark). */
    role: { type: 'string' },
  },
});

type SystemId = 'hfq' | 'baseline';
const SYSTEM_NAMES: Record<SystemId, string> = { hfq: 'hfq', baseline: 'plain BullMQ' };
const QUICK = values.quick === true;
const JOBS = Number(values.jobs ?? (QUICK ? 10_000 : 100_000));
const PROCESSES = Number(values.processes);
const CONCURRENCY = Number(values.concurrency);
const CHUNK = Number(values.chunk);
const ROUNDS = Number(values.rounds ?? (QUICK ? 3 : 1));
const CAP_S = Number(values.cap ?? Math.max(300, JOBS / 50));
const MODEL = 'sentence-transformers/all-MiniLM-L6-v2';
/** hfq's account limit: far above what one machine reaches, so it never binds but is still applied. */
const ACCOUNT_LIMIT = { max: 100_000, durationMs: 1_000 };
const ACCOUNT = 'load';
const BASELINE_QUEUE = 'load';
const TOKENS: Record<SystemId, string> = {
  hfq: 'hf_bench_load_hfq_0123456789abcdef',
  baseline: 'hf_bench_load_baseline_0123456789ab',
};
const TARGETS = { throughputRatio: 0.8, commandsRatio: 1.5 };
/** The simulator is called the bottleneck when it used more than this share of one core. */
const SIM_BUSY_SHARE = 0.8;
const READY_TIMEOUT_MS = 120_000;
const POLL_MS = 200;

const log = (message: string) => process.stderr.write(`${message}\n`);

// ─── /proc and INFO readings ────────────────────────────────────────────────────────────────

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used so far; null if it cannot be read. */
function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** Peak resident set size (VmHWM) of a process, bytes; null if it cannot be read. */
function peakRssBytes(pid: number | 'self' | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

interface RedisReading {
  totalCommands: number;
  cpuSeconds: number;
  usedMemory: number;
  /** Calls per command (`cmdstat_<name>`). */
  calls: Record<string, number>;
}

async function readRedis(redis: Redis): Promise<RedisReading> {
  const text = await redis.info('all');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? NaN);
  const calls: Record<string, number> = {};
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls[match[1] as string] = Number(match[2]);
  }
  return {
    totalCommands: field('total_commands_processed'),
    cpuSeconds: field('used_cpu_user') + field('used_cpu_sys'),
    usedMemory: field('used_memory'),
    calls,
  };
}

// ─── the producer (child process, one per run) ──────────────────────────────────────────────

interface ProducerReport {
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

const loadJob = (i: number) => ({
  account: ACCOUNT,
  task: 'feature-extraction' as const,
  model: MODEL,
  inputs: `load text ${i}`,
});

/** The same options hfq's producer gives every job, for the baseline's `addBulk`. */
const BASELINE_JOB_OPTIONS = {
  attempts: DEFAULT_ATTEMPTS,
  backoff: { ...DEFAULT_BACKOFF },
  removeOnComplete: { ...DEFAULT_RETENTION.removeOnComplete },
  removeOnFail: { ...DEFAULT_RETENTION.removeOnFail },
};

async function producerRole(): Promise<void> {
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

// ─── the benchmark ──────────────────────────────────────────────────────────────────────────

interface RunResult {
  system: SystemId;
  round: number;
  jobs: number;
  completed: number;
  failed: number;
  finished: boolean;
  wallMs: number;
  enqueueMs: number;
  elapsedMs: number;
  jobsPerSecond: number;
  upstream: { requests: number; ok: number };
  memory: { producerPeakRssMB: number | null; workerPeakRssMB: (number | null)[] };
  cpuMsPerJob: { workers: number | null; simulator: number | null; redis: number; producer: number };
  simulatorCoreShare: number | null;
  redis: {
    commandsPerJob: number;
    memoryGrowthMB: number;
    /** Calls per job of each command, largest first. */
    callsPerJob: Record<string, number>;
  };
}

interface SimUrls {
  url: string;
  routerUrl: string;
  hubUrl: string;
  providerUrls: Record<string, string>;
}

const runTag = Date.now().toString(36);
const mb = (bytes: number | null) => (bytes === null ? null : Math.round((bytes / 1024 / 1024) * 10) / 10);

async function main(): Promise<void> {
  const systems = (values.systems ?? '').split(',').map((s) => s.trim()) as SystemId[];
  for (const s of systems) if (s !== 'hfq' && s !== 'baseline') throw new Error(`unknown system "${s}"`);
  const wallStart = performance.now();
  const cleanup = new Cleanup();
  const results: RunResult[] = [];
  let redisSource = '';
  try {
    const redis = await startLocalRedis();
    redisSource = redis.source;
    cleanup.add('redis', () => redis.stop());
    const dir = mkdtempSync(join(tmpdir(), 'hfq-bench-load-'));
    cleanup.add('temporary files', () => rmSync(dir, { recursive: true, force: true }));

    // The simulator in a process of its own: zero latency, a small request log, no Hub limit in the way.
    const simConfig = join(dir, 'sim.json');
    writeFileSync(
      simConfig,
      JSON.stringify({
        latency: { baseMs: 0, jitterMs: 0, perItemMs: 0 },
        logLimit: 1_000,
        hub: { limits: [{ algorithm: 'fixed-window', limit: 100_000, windowMs: 300_000 }] },
        tokens: Object.fromEntries(systems.map((s) => [TOKENS[s], { label: s }])),
      }),
    );
    const sim = ChildNode.start({
      label: 'simulator',
      script: 'packages/cli/src/main.ts',
      args: ['sim'],
      env: { SIM_PORT: '0', SIM_HOST: '127.0.0.1', SIM_CONFIG: simConfig },
    });
    cleanup.add('simulator', () => sim.stop());
    await sim.waitForLine('"routerUrl"', READY_TIMEOUT_MS);
    const urls = JSON.parse(sim.tail.find((l) => l.includes('"routerUrl"')) ?? '{}') as SimUrls;
    log(
      `bench:load ${QUICK ? '(quick) ' : ''}— ${integer(JOBS)} jobs, ${PROCESSES} processes × concurrency ${CONCURRENCY}, ` +
        `systems ${systems.join(', ')}, redis ${redis.source}, simulator ${urls.url}`,
    );
    for (let round = 1; round <= ROUNDS; round++) {
      // Flip the order each round, so neither system always runs on a warmer (or busier) machine.
      const order = round % 2 === 1 ? systems : [...systems].reverse();
      for (const system of order) {
        const result = await runOne(system, round, { redisUrl: redis.url, urls, sim, dir, cleanup });
        results.push(result);
        log(`  ${summaryLine(result)}`);
      }
    }
  } finally {
    await cleanup.runAll();
  }
  const report = buildReport(results, performance.now() - wallStart, redisSource);
  const markdown = renderMarkdown(report);
  mkdirSync('.bench-out', { recursive: true });
  writeFileSync('.bench-out/load.json', `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync('.bench-out/load.md', `${markdown}\n`);
  console.log(markdown);
}

interface RunContext {
  redisUrl: string;
  urls: SimUrls;
  sim: ChildNode;
  dir: string;
  cleanup: Cleanup;
}

async function runOne(system: SystemId, round: number, ctx: RunContext): Promise<RunResult> {
  const prefix = `bench-load-${runTag}-${system}-${round}`;
  const { urls } = ctx;
  log(`[${system}, round ${round}/${ROUNDS}] starting ${PROCESSES} ${SYSTEM_NAMES[system]} workers …`);
  let workerEnv: (i: number) => {
    label: string;
    script: string;
    args?: string[];
    env: Record<string, string>;
  };
  if (system === 'hfq') {
    const accounts: AccountConfigInput[] = [
      { id: ACCOUNT, tier: 'pro', hfToken: TOKENS.hfq, limit: { ...ACCOUNT_LIMIT } },
    ];
    const accountsFile = join(ctx.dir, 'accounts.json');
    writeFileSync(accountsFile, JSON.stringify(accounts));
    workerEnv = (i) => ({
      label: `hfq worker ${i + 1}`,
      script: 'packages/cli/src/main.ts',
      args: ['worker'],
      env: {
        REDIS_URL: ctx.redisUrl,
        HFQ_PREFIX: prefix,
        HFQ_ACCOUNTS_FILE: accountsFile,
        HFQ_CONCURRENCY: String(CONCURRENCY),
        HF_ROUTER_URL: urls.routerUrl,
        HF_HUB_URL: urls.hubUrl,
        HFQ_PROVIDER_URLS: Object.entries(urls.providerUrls)
          .map(([name, url]) => `${name}=${url}`)
          .join(','),
        HFQ_METRICS_PORT: '0',
        HFQ_SHUTDOWN_GRACE_MS: '5000',
        LOG_LEVEL: 'info',
      },
    });
  } else {
    workerEnv = (i) => ({
      label: `baseline worker ${i + 1}`,
      script: 'bench/load-baseline-worker.ts',
      env: {
        REDIS_URL: ctx.redisUrl,
        BENCH_PREFIX: prefix,
        BENCH_QUEUE: BASELINE_QUEUE,
        BENCH_TOKEN: TOKENS.baseline,
        HF_ROUTER_URL: urls.routerUrl,
        HF_HUB_URL: urls.hubUrl,
        BENCH_CONCURRENCY: String(CONCURRENCY),
      },
    });
  }
  // For investigations (a profiler preloaded with --import, say): passed on to every worker.
  const nodeOptions = process.env.BENCH_WORKER_NODE_OPTIONS;
  const workers = await startChildren(
    PROCESSES,
    (i) => {
      const options = workerEnv(i);
      return nodeOptions ? { ...options, env: { ...options.env, NODE_OPTIONS: nodeOptions } } : options;
    },
    system === 'hfq' ? '"worker ready"' : 'baseline ready',
    READY_TIMEOUT_MS,
  );
  const stopWorkers = ctx.cleanup.add(`${system} workers`, () => stopChildren(workers));
  try {
    const simBefore = await simCounts(urls.url, system);
    const workerCpuBefore = workers.map((w) => cpuSeconds(w.pid));
    const simCpuBefore = cpuSeconds(ctx.sim.pid);
    const started = performance.now();
    const producer = ChildNode.start({
      label: `${system} producer`,
      script: 'bench/load.ts',
      args: ['--role', 'producer', '--jobs', String(JOBS), '--chunk', String(CHUNK), '--cap', String(CAP_S)],
      env: { REDIS_URL: ctx.redisUrl, BENCH_PREFIX: prefix, BENCH_SYSTEM: system },
      keep: (line) => line.includes('"producer done"'),
    });
    const stopProducer = ctx.cleanup.add(`${system} producer`, () => producer.stop());
    const exit = await producer.exited;
    const wallMs = performance.now() - started;
    const line = producer.kept[0];
    if (exit.code !== 0 || !line) {
      throw new Error(`${system} producer exited (${exit.code ?? exit.signal})\n${producer.lastLines()}`);
    }
    await stopProducer();
    const run = JSON.parse(line) as ProducerReport;
    const workerCpu = workers.map((w, i) => {
      const now = cpuSeconds(w.pid);
      const then = workerCpuBefore[i];
      return now === null || then === null || then === undefined ? null : now - then;
    });
    const simCpuNow = cpuSeconds(ctx.sim.pid);
    const simCpu = simCpuNow === null || simCpuBefore === null ? null : simCpuNow - simCpuBefore;
    const workerPeak = workers.map((w) => mb(peakRssBytes(w.pid)));
    const simAfter = await simCounts(urls.url, system);
    const perJob = (seconds: number | null) =>
      seconds === null ? null : Math.round(((seconds * 1000) / JOBS) * 1000) / 1000;
    const callsPerJob = Object.fromEntries(
      Object.entries(run.redis.calls)
        .sort((a, b) => b[1] - a[1])
        .map(([name, n]) => [name, Math.round((n / JOBS) * 100) / 100]),
    );
    const workerCpuTotal = workerCpu.every((c) => c !== null)
      ? (workerCpu as number[]).reduce((a, b) => a + b, 0)
      : null;
    return {
      system,
      round,
      jobs: JOBS,
      completed: run.completed,
      failed: run.failed,
      finished: run.finished,
      wallMs: Math.round(wallMs),
      enqueueMs: run.enqueueMs,
      elapsedMs: run.elapsedMs,
      jobsPerSecond: Math.round((run.completed / (run.elapsedMs / 1000)) * 10) / 10,
      upstream: { requests: simAfter.total - simBefore.total, ok: simAfter.ok - simBefore.ok },
      memory: { producerPeakRssMB: mb(run.producerPeakRssBytes), workerPeakRssMB: workerPeak },
      cpuMsPerJob: {
        workers: perJob(workerCpuTotal),
        simulator: perJob(simCpu),
        redis: perJob(run.redis.cpuSeconds) as number,
        producer: perJob(run.producerCpuSeconds) as number,
      },
      simulatorCoreShare: simCpu === null ? null : Math.round((simCpu / (run.elapsedMs / 1000)) * 100) / 100,
      redis: {
        commandsPerJob: Math.round((run.redis.commands / JOBS) * 100) / 100,
        memoryGrowthMB: mb(run.redis.memoryGrowthBytes) as number,
        callsPerJob,
      },
    };
  } finally {
    await stopWorkers();
    await deletePrefix(ctx.redisUrl, prefix).catch(() => 0);
  }
}

/** Requests the simulator has seen from a system's token: all, and answered 200. */
async function simCounts(base: string, system: SystemId): Promise<{ total: number; ok: number }> {
  const res = await fetch(`${base}/_sim/stats`);
  const stats = (await res.json()) as {
    byToken: Record<string, { total: number; byStatus: Record<string, number> }>;
  };
  const entry = stats.byToken[system];
  return { total: entry?.total ?? 0, ok: entry?.byStatus['200'] ?? 0 };
}

// ─── report ─────────────────────────────────────────────────────────────────────────────────

interface Report {
  mode: 'quick' | 'full';
  generatedAt: string;
  wallSeconds: number;
  setup: {
    jobs: number;
    processes: number;
    concurrency: number;
    accountLimit: string;
    model: string;
    client: string;
    redis: string;
    simulator: string;
    baseline: string;
  };
  rounds: number;
  runs: RunResult[];
  /** The round of each system's median run, the one the ratios compare. */
  median: Record<SystemId, number | null>;
  ratios: {
    throughput: number | null;
    /** Baseline CPU per job (every process) ÷ hfq's: the throughput ratio of a machine doing nothing else. */
    cpuImpliedThroughput: number | null;
    commandsPerJob: number | null;
    throughputTarget: number;
    commandsTarget: number;
    throughputMet: boolean | null;
    commandsMet: boolean | null;
  };
  /** Commands per job hfq issues beyond the baseline, largest first. */
  addedCallsPerJob: Record<string, number>;
  simulatorBottleneck: boolean;
}

/** The run with the median throughput of a system (the lower middle one for an even count). */
function medianRun(results: RunResult[], system: SystemId): RunResult | undefined {
  const runs = results.filter((r) => r.system === system).sort((a, b) => a.jobsPerSecond - b.jobsPerSecond);
  return runs[Math.floor((runs.length - 1) / 2)];
}

function buildReport(results: RunResult[], wallMs: number, redisSource: string): Report {
  const hfq = medianRun(results, 'hfq');
  const base = medianRun(results, 'baseline');
  const throughput = hfq && base ? Math.round((hfq.jobsPerSecond / base.jobsPerSecond) * 1000) / 1000 : null;
  // On a CPU-bound machine, throughput goes as 1 ÷ CPU per job: a figure other load does not move.
  const totalCpu = (r: RunResult) =>
    (r.cpuMsPerJob.workers ?? Number.NaN) +
    (r.cpuMsPerJob.simulator ?? Number.NaN) +
    r.cpuMsPerJob.redis +
    r.cpuMsPerJob.producer;
  const cpuImplied = hfq && base ? Math.round((totalCpu(base) / totalCpu(hfq)) * 1000) / 1000 : null;
  const commands =
    hfq && base ? Math.round((hfq.redis.commandsPerJob / base.redis.commandsPerJob) * 1000) / 1000 : null;
  const added: Record<string, number> = {};
  if (hfq && base) {
    const names = new Set([...Object.keys(hfq.redis.callsPerJob), ...Object.keys(base.redis.callsPerJob)]);
    for (const name of names) {
      const delta = (hfq.redis.callsPerJob[name] ?? 0) - (base.redis.callsPerJob[name] ?? 0);
      if (Math.abs(delta) >= 0.01) added[name] = Math.round(delta * 100) / 100;
    }
  }
  return {
    mode: QUICK ? 'quick' : 'full',
    generatedAt: new Date().toISOString(),
    wallSeconds: Math.round(wallMs / 100) / 10,
    setup: {
      jobs: JOBS,
      processes: PROCESSES,
      concurrency: CONCURRENCY,
      accountLimit: `${ACCOUNT_LIMIT.max} per ${ACCOUNT_LIMIT.durationMs} ms (never binds; the permit is still taken)`,
      model: MODEL,
      client: `@huggingface/inference ${clientVersion}`,
      redis: redisSource,
      simulator: '`hfq sim` in its own process, zero latency',
      baseline:
        'BullMQ Worker, no limiter, the same client and URL rewrite; jobs added with addBulk and the same options as hfq',
    },
    rounds: ROUNDS,
    runs: results,
    median: { hfq: hfq?.round ?? null, baseline: base?.round ?? null },
    ratios: {
      throughput,
      cpuImpliedThroughput: Number.isFinite(cpuImplied) ? cpuImplied : null,
      commandsPerJob: commands,
      throughputTarget: TARGETS.throughputRatio,
      commandsTarget: TARGETS.commandsRatio,
      throughputMet: throughput === null ? null : throughput >= TARGETS.throughputRatio,
      commandsMet: commands === null ? null : commands <= TARGETS.commandsRatio,
    },
    addedCallsPerJob: Object.fromEntries(Object.entries(added).sort((a, b) => b[1] - a[1])),
    simulatorBottleneck: results.some((r) => (r.simulatorCoreShare ?? 0) > SIM_BUSY_SHARE),
  };
}

function summaryLine(r: RunResult): string {
  return (
    `${SYSTEM_NAMES[r.system]} (round ${r.round}): ${integer(r.completed)} done, ${integer(r.failed)} failed in ${fixed(r.elapsedMs / 1000)} s ` +
    `= ${fixed(r.jobsPerSecond, 0)} jobs/s; ${fixed(r.redis.commandsPerJob, 1)} Redis commands/job; ` +
    `worker peak RSS ${r.memory.workerPeakRssMB.map((m) => m ?? '?').join('/')} MB; producer ${r.memory.producerPeakRssMB ?? '?'} MB; ` +
    `simulator ${r.simulatorCoreShare ?? '?'} of a core`
  );
}

const mark = (ok: boolean | null) => (ok === null ? '—' : ok ? 'pass' : 'miss');
const maxOf = (list: (number | null)[]) => Math.max(...list.map((m) => m ?? 0));
const meanOf = (list: (number | null)[]) => list.reduce<number>((a, m) => a + (m ?? 0), 0) / list.length;

function renderMarkdown(report: Report): string {
  const { setup, runs, ratios } = report;
  const lines: string[] = [
    `# Load: hfq against plain BullMQ${report.mode === 'quick' ? ' (quick)' : ''}`,
    '',
    `${integer(setup.jobs)} feature-extraction jobs per system; ${setup.processes} worker processes × concurrency ${setup.concurrency}; ` +
      `simulator: ${setup.simulator}; Redis: ${setup.redis}; client ${setup.client}. hfq account limit ${setup.accountLimit}. ` +
      `Baseline: ${setup.baseline}. Wall time ${fixed(report.wallSeconds, 0)} s.`,
    '',
    report.rounds > 1
      ? `${report.rounds} rounds, the order of the systems flipped each round; the ratios compare each system's median run (marked *).`
      : 'One run per system.',
    '',
    '- jobs/s: completed jobs ÷ seconds from the start of the enqueue to the last job finished (its `finishedOn`).',
    '- Redis commands/job: `total_commands_processed` (commands inside Lua scripts included) over the run ÷ jobs.',
    '- CPU ms/job: CPU time of each process group over the run ÷ jobs (a 2-core machine runs everything).',
    '',
    markdownTable(
      [
        'system',
        'round',
        'done / failed',
        'enqueue',
        'enqueue → last result',
        'jobs/s',
        'Redis cmds/job',
        'worker peak RSS (max / mean)',
        'producer peak RSS',
        'Redis memory growth',
        'CPU ms/job: workers / sim / Redis / producer',
        'simulator busy',
      ],
      runs.map((r) => [
        SYSTEM_NAMES[r.system],
        `${r.round}${report.rounds > 1 && report.median[r.system] === r.round ? ' *' : ''}`,
        `${integer(r.completed)} / ${integer(r.failed)}${r.finished ? '' : ' (cap reached)'}`,
        `${fixed(r.enqueueMs / 1000)} s`,
        `${fixed(r.elapsedMs / 1000)} s`,
        fixed(r.jobsPerSecond, 0),
        fixed(r.redis.commandsPerJob, 1),
        `${fixed(maxOf(r.memory.workerPeakRssMB), 0)} / ${fixed(meanOf(r.memory.workerPeakRssMB), 0)} MB`,
        `${fixed(r.memory.producerPeakRssMB ?? 0, 0)} MB`,
        `${fixed(r.redis.memoryGrowthMB, 0)} MB`,
        [r.cpuMsPerJob.workers, r.cpuMsPerJob.simulator, r.cpuMsPerJob.redis, r.cpuMsPerJob.producer]
          .map((v) => (v === null ? '?' : fixed(v, 3)))
          .join(' / '),
        r.simulatorCoreShare === null ? '?' : `${fixed(r.simulatorCoreShare * 100, 0)}% of a core`,
      ]),
      ['l'],
    ),
  ];
  if (ratios.throughput !== null && ratios.commandsPerJob !== null) {
    lines.push(
      '',
      '## hfq ÷ baseline',
      '',
      markdownTable(
        ['figure', 'ratio', 'target', ''],
        [
          [
            'throughput',
            fixed(ratios.throughput, 3),
            `≥ ${ratios.throughputTarget}`,
            mark(ratios.throughputMet),
          ],
          [
            'throughput implied by CPU per job (all processes)',
            ratios.cpuImpliedThroughput === null ? '?' : fixed(ratios.cpuImpliedThroughput, 3),
            '(for reference)',
            '',
          ],
          [
            'Redis commands per job',
            fixed(ratios.commandsPerJob, 3),
            `≤ ${ratios.commandsTarget}`,
            mark(ratios.commandsMet),
          ],
        ],
        ['l'],
      ),
      '',
      `Redis calls per job hfq adds (+) or saves (−) against the baseline: ${
        Object.entries(report.addedCallsPerJob)
          .map(([name, n]) => `${name} ${n > 0 ? '+' : ''}${fixed(n, 2)}`)
          .join(', ') || 'none'
      }.`,
    );
  }
  for (const r of runs.filter((x) => report.median[x.system] === x.round)) {
    const top = Object.entries(r.redis.callsPerJob)
      .slice(0, 12)
      .map(([name, n]) => `${name} ${fixed(n, 2)}`);
    lines.push('', `${SYSTEM_NAMES[r.system]} (round ${r.round}), Redis calls per job: ${top.join(', ')}.`);
  }
  lines.push(
    '',
    report.simulatorBottleneck
      ? `The simulator used more than ${SIM_BUSY_SHARE * 100}% of a core in some run: it may have capped throughput there.`
      : `The simulator used at most ${fixed(Math.max(...runs.map((r) => (r.simulatorCoreShare ?? 0) * 100)), 0)}% of a core: it was not the bottleneck.`,
  );
  return lines.join('\n');
}

if (values.role === 'producer') {
  producerRole().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
} else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
