/**
 * `pnpm bench:limits`: what a run measures and how: the result's shape, the upstream's figures
 * from the simulator's request log, hfq's results and congestion episodes, and `--trace`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { type JobHandle, ResultTimeoutError } from '@hfq/producer';
import { Redis } from 'ioredis';
import { fixed } from '../support/format.js';
import type { SimProcess } from '../support/sim-process.js';
import { type UpstreamFigures, upstreamFigures } from '../support/upstream-figures.js';
import { log, RATE_SHARE_TARGET } from './options.js';
import type { Scenario, ScenarioId, SystemId } from './scenarios.js';

export interface LearnedSample {
  /** ms since the enqueue began */
  atMs: number;
  learnedRate: number | null;
  pausedForMs: number;
}

export interface Episode {
  /** ms since the enqueue began */
  atMs: number;
  learnedRate: number;
  delayMs: number;
  delaySource: string;
}

export interface RunResult {
  system: SystemId;
  scenario: ScenarioId;
  jobs: number;
  completed: number;
  failed: number;
  /** Neither completed nor failed when the run ended (cap reached). */
  unfinished: number;
  finished: boolean;
  capMs: number;
  workerStartMs: number;
  enqueueMs: number;
  /** From the start of the enqueue to the last job completed or failed. */
  enqueueToLastResultMs: number | null;
  upstream: UpstreamFigures;
  maxAdmittedInWindow: number;
  /** Requests per second from the first request on: admitted (not 429) and answered 429. */
  timeline: { admitted: number[]; throttled: number[] };
  /** (completed ÷ true rate per second) ÷ elapsed(first → last request). */
  efficiency: number;
  /** The 429 share in the scenario's watched phases (a lowered limit), when it has them. */
  watched: { share: number; requests: number } | null;
  /** Event-loop delay of the benchmark process during the run (ms). */
  benchLoopDelayMs: { p99: number; max: number };
  targets?: { efficiency: boolean; throttledShare: boolean; watchedShare: boolean };
  hfq?: { episodes: Episode[]; learned: LearnedSample[]; finalLearnedRate: number | null };
}

/** What the simulator saw of one run: its request figures, the most admitted in one window, a per-second timeline. */
export async function measureUpstream(
  sim: SimProcess,
  label: string,
  scenario: Scenario,
): Promise<Pick<RunResult, 'upstream' | 'maxAdmittedInWindow' | 'timeline'>> {
  const filter = { route: 'router' as const, tokenLabel: label };
  const records = await sim.requests(filter);
  const upstream = upstreamFigures(
    records,
    scenario.configured.durationMs,
    RATE_SHARE_TARGET * scenario.trueLimit,
  );
  const maxAdmittedInWindow = (await sim.maxInWindow(scenario.configured.durationMs, filter)).admitted;
  // Requests per second of the run, admitted and refused (for the JSON report).
  const timeline: { admitted: number[]; throttled: number[] } = { admitted: [], throttled: [] };
  for (const record of records) {
    const second = Math.floor((record.t - (upstream.firstAt ?? record.t)) / 1000);
    const series = record.status === 429 ? timeline.throttled : timeline.admitted;
    while (timeline.admitted.length <= second) timeline.admitted.push(0);
    while (timeline.throttled.length <= second) timeline.throttled.push(0);
    series[second] = (series[second] ?? 0) + 1;
  }
  return { upstream, maxAdmittedInWindow, timeline };
}

/** Writes the domain state hash (without its ring of counts) every 250 ms; returns the stop function. */
export function traceDomain(redisUrl: string, prefix: string, scenarioId: string, t0: number): () => void {
  const redis = new Redis(redisUrl);
  const lines: string[] = [];
  const timer = setInterval(() => {
    void (async () => {
      const keys = (await redis.keys(`${prefix}:hfq:domain:*`)).filter((k) => k.endsWith('}'));
      for (const key of keys) {
        const state = await redis.hgetall(key);
        const [sec, micros] = await redis.time();
        state.now = String(Number(sec) * 1000 + Math.floor(Number(micros) / 1000));
        const kept = Object.fromEntries(Object.entries(state).filter(([f]) => !/^[bst]\d+$/.test(f)));
        lines.push(JSON.stringify({ atMs: Math.round(performance.now() - t0), key, ...kept }));
      }
    })().catch(() => {});
  }, 250);
  return () => {
    clearInterval(timer);
    mkdirSync('.bench-out', { recursive: true });
    writeFileSync(`.bench-out/trace-${scenarioId}.jsonl`, `${lines.join('\n')}\n`);
    redis.disconnect();
  };
}

/** Wait for every handle's result until `deadline` (performance clock); count outcomes. */
export async function awaitHandles(
  handles: JobHandle[],
  t0: number,
  deadline: number,
): Promise<{ completed: number; failed: number; lastResultMs: number | null }> {
  let completed = 0;
  let failed = 0;
  let last: number | null = null;
  const progress = startProgress(() => completed + failed, handles.length, t0);
  try {
    await Promise.all(
      handles.map(async (handle) => {
        try {
          await handle.result({ timeoutMs: Math.max(1, deadline - performance.now()) });
          completed++;
        } catch (err) {
          if (err instanceof ResultTimeoutError) return;
          failed++;
        }
        last = performance.now();
      }),
    );
  } finally {
    clearInterval(progress);
  }
  return { completed, failed, lastResultMs: last === null ? null : last - t0 };
}

export function parseEpisode(line: string, t0: number): Episode[] {
  try {
    const entry = JSON.parse(line) as Record<string, unknown>;
    const time = Number(entry.time);
    return [
      {
        atMs: Math.round(time - performance.timeOrigin - t0),
        learnedRate: Number(entry.learnedRate),
        delayMs: Number(entry.delayMs),
        delaySource: String(entry.delaySource),
      },
    ];
  } catch {
    return [];
  }
}

export function startProgress(done: () => number, total: number, t0: number): NodeJS.Timeout {
  return setInterval(() => {
    log(`    … ${done()}/${total} done after ${fixed((performance.now() - t0) / 1000)} s`);
  }, 15_000);
}
