/**
 * `pnpm bench:load`: what hfq costs at volume, against plain BullMQ.
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
 * (target ≥ 0.9) and commands per job (target ≤ 1.3) and writes `.bench-out/load.json` and
 * `.bench-out/load.md`. `BENCH_WORKER_NODE_OPTIONS` is passed to every worker as NODE_OPTIONS
 * (for example `--import` of a profiler).
 *
 * Parts: `load/options.ts` (options, scenario constants), `load/producer-role.ts` (the producer
 * child), `load/run.ts` (one run: workers, producer, readings), `load/report.ts` (medians, ratios,
 * Markdown), `support/readings.ts` (/proc and INFO).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalRedis } from '../packages/cli/src/local-redis.js';
import {
  CONCURRENCY,
  JOBS,
  log,
  PROCESSES,
  QUICK,
  READY_TIMEOUT_MS,
  ROUNDS,
  type SystemId,
  TOKENS,
  values,
} from './load/options.js';
import { producerRole } from './load/producer-role.js';
import { buildReport, renderMarkdown, summaryLine } from './load/report.js';
import { type RunResult, runOne, type SimUrls } from './load/run.js';
import { ChildNode } from './support/child.js';
import { Cleanup } from './support/cleanup.js';
import { integer } from './support/format.js';

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
