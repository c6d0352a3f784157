/** One load run of one system: start its workers, run its producer, and read what it cost. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AccountConfigInput } from '@hfq/shared';
import { ChildNode, startChildren, stopChildren } from '../support/child.js';
import type { Cleanup } from '../support/cleanup.js';
import { cpuSeconds, peakRssBytes } from '../support/readings.js';
import { deletePrefix } from '../support/redis-prefix.js';
import {
  ACCOUNT,
  ACCOUNT_LIMIT,
  BASELINE_QUEUE,
  CAP_S,
  CHUNK,
  CONCURRENCY,
  JOBS,
  log,
  PROCESSES,
  READY_TIMEOUT_MS,
  ROUNDS,
  SYSTEM_NAMES,
  type SystemId,
  TOKENS,
} from './options.js';
import type { ProducerReport } from './producer-role.js';

export interface RunResult {
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

export interface SimUrls {
  url: string;
  routerUrl: string;
  hubUrl: string;
  providerUrls: Record<string, string>;
}

export const runTag = Date.now().toString(36);
export const mb = (bytes: number | null) =>
  bytes === null ? null : Math.round((bytes / 1024 / 1024) * 10) / 10;

export interface RunContext {
  redisUrl: string;
  urls: SimUrls;
  sim: ChildNode;
  dir: string;
  cleanup: Cleanup;
}

export async function runOne(system: SystemId, round: number, ctx: RunContext): Promise<RunResult> {
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
export async function simCounts(base: string, system: SystemId): Promise<{ total: number; ok: number }> {
  const res = await fetch(`${base}/_sim/stats`);
  const stats = (await res.json()) as {
    byToken: Record<string, { total: number; byStatus: Record<string, number> }>;
  };
  const entry = stats.byToken[system];
  return { total: entry?.total ?? 0, ok: entry?.byStatus['200'] ?? 0 };
}
