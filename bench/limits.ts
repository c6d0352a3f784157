/**
 * `pnpm bench:limits`: how close each system runs to an upstream's rate limit, and
 * how many 429s it draws getting there. Three systems, against the simulator, on one Redis, in
 * one run, with the same jobs:
 *
 * 1. **hfq**: `hfq worker` processes, the account's limit set to the configured N/W.
 * 2. **plain BullMQ**: worker processes with BullMQ's limiter `{ max: N, duration: W }`; a 429 is
 *    a failed attempt, retried with BullMQ's exponential backoff (20 attempts from 1 s).
 * 3. **retry loop**: worker processes with no limiter; each request retries its own 429s with
 *    exponential backoff and jitter (10 tries from 500 ms), nothing shared between requests.
 *
 * Scenarios: (1a) the configured limit is the upstream's sliding window; (1b) the same as a
 * token bucket; (2) the upstream allows 40% of the configured ceiling and says how long to wait
 * (Retry-After in seconds); (3) as 2 with no Retry-After and no rate headers; (4a–4d) the known
 * sliding window plus 0.1%, 2%, 10% or 50% of requests answered 429 at random by a busy provider
 * (no Retry-After; each such 429 counts against the limit, so the ideal allows 1 ÷ (1 − p)
 * requests per job); (5) the known sliding window over a long run, where arrival jitter draws an
 * occasional real 429; (6) a limit that drops from 50/s to 25/s a third of the way through the
 * ideal run and rises back to 50/s at two thirds (the ideal follows it); (7–10) upstreams that
 * change in timed phases (limits/phased-scenarios.ts): noise then a real drop then a rise, a short
 * and a long drop, a slow drift, two regime changes; (11a, 11b) a Free account configured at 5/s
 * against a hidden 3/s or 1/s with Retry-After, (11c) against a hidden 3/s with no headers (the
 * router documents none). Efficiency is the ideal time ÷ the time from the
 * first upstream request to the last.
 *
 * Every system × scenario gets a fresh BullMQ prefix and a fresh simulator token, so nothing
 * learned carries over. Runs are capped at `--cap` × the ideal time (jobs ÷ true rate); a run
 * that hits the cap is reported as "did not finish". Every process and server is stopped at the
 * end, on an error, or on Ctrl-C.
 *
 * Prints a markdown report and writes `.bench-out/limits.json` and `.bench-out/limits.md`.
 * `--quick`: scenarios 1a, 4b, 7, 8a and 11a (unless `--scenarios` names others), 300 jobs per run
 * (600 for 5, 900 for 6, shorter phases and fewer jobs for 7–11), the baselines on 1a and 4b. `--runs N`: hfq runs every scenario N times; the report gives the
 * median and the minimum.
 *
 * Parts: `limits/options.ts` (options, fixed settings), `limits/scenarios.ts` (scenarios, systems,
 * what `--scenarios`, `--systems` and `--quick` pick), `limits/run.ts` (one system × one scenario),
 * `limits/run-hfq.ts` and `limits/run-baselines.ts` (starting and driving each system's workers),
 * `limits/measure.ts` (the result's shape, upstream figures, `--trace`), `limits/report.ts` (summary
 * lines, JSON and Markdown), `support/upstream-figures.ts` (figures from the simulator's log).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { startLocalRedis } from '../packages/cli/src/local-redis.js';
import type { RunResult } from './limits/measure.js';
import { JOBS, LATENCY, log, MODEL, QUICK, RUNS } from './limits/options.js';
import { buildReport, renderMarkdown, summaryLine } from './limits/report.js';
import { runOne } from './limits/run.js';
import type { RunContext } from './limits/run-context.js';
import { jobCount, SCENARIOS, SYSTEMS, systemsFor } from './limits/scenarios.js';
import { Cleanup } from './support/cleanup.js';
import { startSimProcess } from './support/sim-process.js';

async function main(): Promise<void> {
  const wallStart = performance.now();
  const cleanup = new Cleanup();
  const results: RunResult[] = [];
  const baselinePool: RunContext['baselinePool'] = {};
  try {
    const redis = await startLocalRedis();
    cleanup.add('redis', () => redis.stop());
    // The simulator runs in its own process, so this one's bookkeeping cannot skew its clock.
    const sim = await startSimProcess({
      latency: { baseMs: 0, jitterMs: 0, perItemMs: 0, ...LATENCY },
      logLimit: 500_000,
    });
    cleanup.add('simulator', () => sim.close());
    log(
      `bench:limits ${QUICK ? '(quick) ' : ''}— ${JOBS} jobs, scenarios ${SCENARIOS.map((s) => s.id).join(', ')}, ` +
        `systems ${SYSTEMS.join(', ')}, redis ${redis.source}`,
    );
    const most = Math.max(...SCENARIOS.map(jobCount));
    const jobs = Array.from({ length: most }, (_, i) => ({
      account: 'acme',
      task: 'feature-extraction' as const,
      model: MODEL,
      inputs: `text ${i}`,
    }));
    for (const scenario of SCENARIOS) {
      for (const system of systemsFor(scenario)) {
        for (let run = 0; run < (system === 'hfq' ? RUNS : 1); run++) {
          const result = await runOne(system, scenario, {
            sim,
            redisUrl: redis.url,
            jobs,
            cleanup,
            baselinePool,
          });
          results.push(result);
          log(`  ${summaryLine(result, scenario)}`);
        }
      }
    }
  } finally {
    await cleanup.runAll();
  }
  const wallMs = performance.now() - wallStart;
  const report = buildReport(results, wallMs, baselinePool.startMs);
  const markdown = renderMarkdown(report);
  mkdirSync('.bench-out', { recursive: true });
  writeFileSync('.bench-out/limits.json', `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync('.bench-out/limits.md', `${markdown}\n`);
  console.log(markdown);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
