/** `pnpm bench:limits`: one system against one scenario, from a fresh token and prefix to its result. */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { deletePrefix } from '../support/redis-prefix.js';
import { measureUpstream, type RunResult } from './measure.js';
import { BASELINE_CAP, HFQ_CAP, log, PROCESSES, RUNS } from './options.js';
import { watchedShare } from './phased-scenarios.js';
import { runBaseline } from './run-baselines.js';
import type { RunContext } from './run-context.js';
import { runHfq } from './run-hfq.js';
import { idealMsOf, jobCount, type Scenario, SYSTEM_NAMES, type SystemId, upstreamOf } from './scenarios.js';

const runTag = Date.now().toString(36);
let runNumber = 0;

/** One system against one scenario: fresh token, fresh prefix, workers up, enqueue, wait, measure, tear down. */
export async function runOne(system: SystemId, scenario: Scenario, all: RunContext): Promise<RunResult> {
  const jobs = all.jobs.slice(0, jobCount(scenario));
  const ctx = { ...all, jobs };
  const { sim } = ctx;
  const n = ++runNumber;
  const token = `hf_bench_limits_${runTag}_${n}_${scenario.id}_${system}`;
  const label = `${scenario.id}/${system}/${n}`;
  const prefix = `bench-limits-${runTag}-${n}-${scenario.id}-${system}`;
  await sim.setToken(token, {
    label,
    limits: [upstreamOf(scenario, jobs.length)],
    throttleStyle: scenario.throttleStyle,
    ...(scenario.busyShare ? { busyShare: scenario.busyShare } : {}),
    ...(scenario.busySchedule ? { busySchedule: scenario.busySchedule } : {}),
  });
  const idealMs = idealMsOf(scenario, jobs.length);
  const capMs = Math.round(idealMs * (system === 'hfq' ? HFQ_CAP : BASELINE_CAP));
  log(`[${scenario.id}] ${SYSTEM_NAMES[system]}: starting ${PROCESSES} workers …`);
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const outcome =
    system === 'hfq'
      ? await runHfq(scenario, ctx, {
          token,
          prefix,
          capMs,
          traceName: RUNS > 1 ? `${scenario.id}-run${n}` : scenario.id,
        })
      : await runBaseline(system, scenario, ctx, { token, prefix, capMs });
  loopDelay.disable();
  await deletePrefix(ctx.redisUrl, prefix).catch(() => 0);

  const { upstream, maxAdmittedInWindow, timeline } = await measureUpstream(sim, label, scenario);
  await sim.resetStats();
  const efficiency = upstream.elapsedMs > 0 ? idealMsOf(scenario, outcome.completed) / upstream.elapsedMs : 0;
  const finished = outcome.completed + outcome.failed === jobs.length;
  const watched = scenario.phased ? watchedShare(scenario.phased, timeline) : null;
  const watchedTarget = scenario.target.watchedShare;
  return {
    system,
    scenario: scenario.id,
    jobs: jobs.length,
    completed: outcome.completed,
    failed: outcome.failed,
    unfinished: jobs.length - outcome.completed - outcome.failed,
    finished,
    capMs,
    workerStartMs: outcome.workerStartMs,
    enqueueMs: outcome.enqueueMs,
    enqueueToLastResultMs: outcome.lastResultMs,
    upstream,
    maxAdmittedInWindow,
    timeline,
    efficiency,
    watched,
    benchLoopDelayMs: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
    ...(system === 'hfq'
      ? {
          targets: {
            efficiency: finished && outcome.failed === 0 && efficiency >= scenario.target.efficiency,
            throttledShare:
              scenario.target.throttledShare === null ||
              upstream.throttledShare <= scenario.target.throttledShare,
            watchedShare: watchedTarget === undefined || (watched !== null && watched.share <= watchedTarget),
          },
        }
      : {}),
    ...(outcome.hfq ? { hfq: outcome.hfq } : {}),
  };
}
