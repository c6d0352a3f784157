/**
 * pnpm bench:failover — how long hfq takes to fail over when HF credits run out: from the
 * upstream's first 402 to the first success through the provider key, median over several runs,
 * and how many jobs were lost (must be 0).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createProducer } from '@hfq/producer';
import { createLogger, type Job } from '@hfq/shared';
import { startSim } from '@hfq/sim';
import { createWorker } from '@hfq/worker';
import { startLocalRedis } from '../packages/cli/src/local-redis.js';

const RUNS = process.argv.includes('--quick') ? 3 : 7;
const JOBS = 300;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

async function oneRun(redisUrl: string, run: number) {
  const sim = await startSim({ latency: { baseMs: 0, jitterMs: 0, minMs: 20, maxMs: 80, perItemMs: 0 } });
  const hf = `hf_bench_failover_${run}_0123456789`;
  const key = `tg-bench-failover-${run}`;
  sim.setToken(hf, { label: 'hf', credits: { balanceUsd: 0.005, costPerRequestUsd: 0.0001 } });
  sim.setToken(key, { label: 'key' });
  const prefix = `benchfo${Date.now().toString(36)}${run}`;
  const worker = await createWorker({
    connection: redisUrl,
    prefix,
    accounts: [
      {
        id: 'acme',
        tier: 'pro',
        hfToken: hf,
        limit: { max: 100, durationMs: 1000 },
        providerKeys: { together: { key, limits: [{ max: 100, durationMs: 1000 }] } },
        fallbackProviders: ['together'],
      },
    ],
    upstream: { routerUrl: sim.routerUrl, hubUrl: sim.hubUrl, providerUrls: { ...sim.providerUrls } },
    concurrency: 16,
    logger: createLogger({ level: 'silent' }),
  });
  const producer = createProducer({ connection: redisUrl, prefix });
  try {
    const jobs: Job[] = Array.from({ length: JOBS }, (_, i) => ({
      account: 'acme',
      task: 'feature-extraction',
      model: 'sentence-transformers/all-MiniLM-L6-v2',
      inputs: `run ${run} text ${i}`,
    }));
    const handles = await producer.enqueueMany(jobs);
    const settled = await Promise.allSettled(handles.map((h) => h.result({ timeoutMs: 120_000 })));
    const completed = settled.filter((s) => s.status === 'fulfilled').length;
    const log = sim.requests();
    const first402 = log.find((r) => r.status === 402);
    const firstKeySuccess = log.find((r) => r.route === 'provider' && r.status === 200);
    const routerAfter402 = log.filter((r) => r.route === 'router' && first402 && r.seq > first402.seq).length;
    return {
      failoverMs:
        first402 && firstKeySuccess
          ? firstKeySuccess.t + firstKeySuccess.durationMs - first402.t
          : Number.NaN,
      lost: JOBS - completed,
      routerRequestsAfter402: routerAfter402,
    };
  } finally {
    await producer.close();
    await worker.close();
    await sim.close();
  }
}

const redis = await startLocalRedis();
try {
  const runs = [];
  for (let run = 0; run < RUNS; run++) runs.push(await oneRun(redis.url, run));
  const summary = {
    runs: runs.length,
    jobsPerRun: JOBS,
    failoverMsMedian: median(runs.map((r) => r.failoverMs)),
    failoverMsMin: Math.min(...runs.map((r) => r.failoverMs)),
    failoverMsMax: Math.max(...runs.map((r) => r.failoverMs)),
    jobsLost: runs.reduce((sum, r) => sum + r.lost, 0),
    routerRequestsAfterFirst402Median: median(runs.map((r) => r.routerRequestsAfter402)),
    perRun: runs,
  };
  mkdirSync('.bench-out', { recursive: true });
  writeFileSync('.bench-out/failover.json', `${JSON.stringify(summary, null, 2)}\n`);
  console.log(
    '| runs | jobs/run | failover median (first 402 → first key success) | min | max | router requests after first 402 (median) | jobs lost |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  console.log(
    `| ${summary.runs} | ${JOBS} | ${summary.failoverMsMedian.toFixed(1)} ms | ${summary.failoverMsMin.toFixed(1)} ms | ${summary.failoverMsMax.toFixed(1)} ms | ${summary.routerRequestsAfterFirst402Median} | ${summary.jobsLost} |`,
  );
  if (summary.jobsLost > 0) process.exitCode = 1;
} finally {
  await redis.stop();
}
