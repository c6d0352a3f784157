/**
 * `pnpm bench:limits`: the scenarios (what the upstream enforces, what every system is told, hfq's
 * targets), the systems, and which of them `--scenarios`, `--systems` and `--quick` pick.
 */
import type { RateLimitConfig, ThrottleStyle } from '@hfq/sim';
import { percent } from '../support/format.js';
import { JOBS, QUICK, values } from './options.js';
import {
  PHASED,
  PHASED_JOBS,
  NO_HEADERS as PHASED_NO_HEADERS,
  type PhasedUpstream,
  phasedIdealMs,
  phasedLimit,
  RETRY_AFTER,
} from './phased-scenarios.js';

export type ScenarioId =
  | '1a'
  | '1b'
  | '2'
  | '3'
  | '4a'
  | '4b'
  | '4c'
  | '4d'
  | '5'
  | '6'
  | '7'
  | '8a'
  | '8b'
  | '9'
  | '10'
  | '11a'
  | '11b'
  | '11c';
export type SystemId = 'hfq' | 'bullmq' | 'retry';

export interface Scenario {
  id: ScenarioId;
  title: string;
  /** What every system is told: N per W. */
  configured: { max: number; durationMs: number };
  /** What the upstream enforces, per the same window (its highest level when the limit moves). */
  trueLimit: number;
  /** The upstream's limit for a run of `jobs` jobs (a moving limit's schedule depends on it). */
  upstream: RateLimitConfig | ((jobs: number) => RateLimitConfig);
  throttleStyle: Partial<ThrottleStyle>;
  /** Share of requests a busy provider answers 429 at random, no Retry-After (the simulator's `busyShare`). */
  busyShare?: number;
  /** The busy share by phase (the simulator's `busySchedule`). */
  busySchedule?: { afterMs: number; share: number }[];
  /** A scenario in phases (phased-scenarios.ts): its watched phases' 429 share is reported apart. */
  phased?: PhasedUpstream;
  /** Jobs per run, when not the benchmark's `--jobs` (full run, quick run). */
  jobs?: { full: number; quick: number };
  /**
   * The least time `jobs` jobs can take at the true limit, honouring the extra requests noise
   * forces (ms). @defaultValue jobs ÷ true limit
   */
  idealMs?: (jobs: number) => number;
  /** hfq's targets: efficiency at least, 429 share at most (none for noise: its 429s are the upstream's). */
  target: {
    efficiency: number;
    throttledShare: number | null;
    /** Most 429s in the watched phases (a lowered limit), when the scenario has them. */
    watchedShare?: number;
  };
}

export const WINDOW_MS = 1_000;
export const CONFIGURED = { max: 50, durationMs: WINDOW_MS };
const HIDDEN_LIMIT = 20;
/** A Free account's configured rate: the tier table's estimate. */
const FREE = { max: 5, durationMs: WINDOW_MS };
const NO_HEADERS: Partial<ThrottleStyle> = PHASED_NO_HEADERS;

export const ALL_SCENARIOS: Scenario[] = [
  {
    id: '1a',
    title: 'Known limit, sliding window',
    configured: CONFIGURED,
    trueLimit: CONFIGURED.max,
    upstream: { algorithm: 'sliding-window', limit: CONFIGURED.max, windowMs: WINDOW_MS },
    throttleStyle: NO_HEADERS,
    target: { efficiency: 0.97, throttledShare: 0.005 },
  },
  {
    id: '1b',
    title: 'Known limit, token bucket',
    configured: CONFIGURED,
    trueLimit: CONFIGURED.max,
    upstream: {
      algorithm: 'token-bucket',
      limit: CONFIGURED.max,
      windowMs: WINDOW_MS,
      burst: CONFIGURED.max,
    },
    throttleStyle: NO_HEADERS,
    target: { efficiency: 0.97, throttledShare: 0.005 },
  },
  {
    id: '2',
    title: 'Hidden limit (40% of the configured ceiling), Retry-After',
    configured: CONFIGURED,
    trueLimit: HIDDEN_LIMIT,
    upstream: { algorithm: 'sliding-window', limit: HIDDEN_LIMIT, windowMs: WINDOW_MS },
    throttleStyle: { retryAfter: 'seconds', rateLimitHeaders: 'none' },
    target: { efficiency: 0.85, throttledShare: 0.03 },
  },
  {
    id: '3',
    title: 'Hidden limit (40% of the configured ceiling), no Retry-After, no rate headers',
    configured: CONFIGURED,
    trueLimit: HIDDEN_LIMIT,
    upstream: { algorithm: 'sliding-window', limit: HIDDEN_LIMIT, windowMs: WINDOW_MS },
    throttleStyle: NO_HEADERS,
    target: { efficiency: 0.85, throttledShare: 0.03 },
  },
  ...(
    [
      ['4a', 0.001],
      ['4b', 0.02],
      ['4c', 0.1],
      ['4d', 0.5],
    ] as const
  ).map(
    ([id, p]): Scenario => ({
      id,
      title: `Known 50/s, plus ${percent(p, p < 0.01 ? 1 : 0)} of requests answered 429 at random by a busy provider, no Retry-After`,
      configured: CONFIGURED,
      trueLimit: CONFIGURED.max,
      upstream: { algorithm: 'sliding-window', limit: CONFIGURED.max, windowMs: WINDOW_MS },
      throttleStyle: NO_HEADERS,
      busyShare: p,
      // Each job needs 1 ÷ (1 − p) requests on average, and every request counts against the limit.
      idealMs: (jobs) => (jobs / (1 - p) / CONFIGURED.max) * WINDOW_MS,
      target: { efficiency: (p <= 0.1 ? 0.92 : 0.8) * (1 - p), throttledShare: null },
    }),
  ),
  {
    id: '5',
    title: 'Known limit, sliding window, long run: occasional real 429s from arrival jitter',
    configured: CONFIGURED,
    trueLimit: CONFIGURED.max,
    upstream: { algorithm: 'sliding-window', limit: CONFIGURED.max, windowMs: WINDOW_MS },
    throttleStyle: NO_HEADERS,
    jobs: { full: 3_000, quick: 600 },
    target: { efficiency: 0.95, throttledShare: 0.005 },
  },
  {
    id: '6',
    title: 'Moving limit: 50/s, 25/s from a third of the ideal run, 50/s again from two thirds',
    configured: CONFIGURED,
    trueLimit: CONFIGURED.max,
    upstream: (jobs) => {
      const { first, second } = movingPhases(jobs);
      return {
        algorithm: 'sliding-window',
        limit: CONFIGURED.max,
        windowMs: WINDOW_MS,
        schedule: [
          { afterMs: first, limit: MOVING_LOW },
          { afterMs: first + second, limit: CONFIGURED.max },
        ],
      };
    },
    throttleStyle: NO_HEADERS,
    jobs: { full: 1_500, quick: 900 },
    idealMs: (jobs) => {
      const { first, second } = movingPhases(jobs);
      return first + second + ((jobs - 2 * Math.floor(jobs / 3)) / CONFIGURED.max) * WINDOW_MS;
    },
    target: { efficiency: 0.85, throttledShare: 0.03 },
  },
  ...phasedScenarios(),
];

/** The scenarios whose upstream changes in phases (phased-scenarios.ts), and the Free account's. */
function phasedScenarios(): Scenario[] {
  const phased = (
    id: ScenarioId,
    title: string,
    key: keyof typeof PHASED,
    target: Scenario['target'],
  ): Scenario => {
    const up: PhasedUpstream = PHASED[key];
    const { limit, busySchedule } = phasedLimit(up);
    const noisy = up.phases.some((p) => (p.busy ?? 0) > 0);
    return {
      id,
      title,
      configured: CONFIGURED,
      trueLimit: Math.max(...up.phases.map((p) => p.limit)),
      upstream: limit,
      throttleStyle: PHASED_NO_HEADERS,
      ...(noisy ? { busySchedule } : {}),
      phased: up,
      jobs: PHASED_JOBS[key],
      idealMs: (jobs) => phasedIdealMs(up, jobs),
      target,
    };
  };
  const free = (
    id: ScenarioId,
    hidden: number,
    jobs: { full: number; quick: number },
    stated = true,
  ): Scenario => ({
    id,
    title: `Free account: configured ${FREE.max}/s (the tier's estimate), hidden ${hidden}/s, ${stated ? 'Retry-After' : 'no headers'}`,
    configured: FREE,
    trueLimit: hidden,
    upstream: { algorithm: 'sliding-window', limit: hidden, windowMs: WINDOW_MS },
    throttleStyle: stated ? RETRY_AFTER : NO_HEADERS,
    jobs,
    target: { efficiency: 0.85, throttledShare: 0.03 },
  });
  return [
    phased(
      '7',
      'Noise then a real drop: 20% random 429s, a clean spell, the limit drops to 17/s, then 50/s again',
      'noiseThenDrop',
      { efficiency: 0.85, throttledShare: null, watchedShare: 0.05 },
    ),
    phased('8a', 'Short drop: 50/s, 20/s for 12 s (10 s quick), 50/s again', 'shortDrop', {
      efficiency: 0.88,
      throttledShare: 0.03,
    }),
    phased('8b', 'Long drop: 50/s, 20/s for 40 s (25 s quick), 50/s again', 'longDrop', {
      efficiency: 0.88,
      throttledShare: 0.03,
    }),
    phased('9', 'Slow drift: 50/s down to 30/s over 60 s (20 s quick) and back as slowly', 'drift', {
      efficiency: 0.88,
      throttledShare: 0.03,
    }),
    phased(
      '10',
      'Two regime changes: 50/s with 10% random 429s, then a clean 25/s, then 40/s with 2% random 429s',
      'twoRegimes',
      { efficiency: 0.88, throttledShare: null, watchedShare: 0.03 },
    ),
    free('11a', 3, { full: 240, quick: 60 }),
    free('11b', 1, { full: 100, quick: 40 }),
    // (The router documents no header on its 429s: reference/huggingface.md.)
    free('11c', 3, { full: 240, quick: 60 }, false),
  ];
}

/** The moving limit's low level, and the ideal length of its first two phases (a third of the jobs each). */
const MOVING_LOW = 25;
function movingPhases(jobs: number): { first: number; second: number } {
  const third = Math.floor(jobs / 3);
  return { first: (third / CONFIGURED.max) * WINDOW_MS, second: (third / MOVING_LOW) * WINDOW_MS };
}

export function upstreamOf(scenario: Scenario, jobs: number): RateLimitConfig {
  return typeof scenario.upstream === 'function' ? scenario.upstream(jobs) : scenario.upstream;
}

export function jobCount(scenario: Scenario): number {
  if (values.jobs !== undefined || !scenario.jobs) return JOBS;
  return QUICK ? scenario.jobs.quick : scenario.jobs.full;
}

export function idealMsOf(scenario: Scenario, jobs: number): number {
  return scenario.idealMs?.(jobs) ?? (jobs / scenario.trueLimit) * scenario.configured.durationMs;
}

export const SYSTEM_NAMES: Record<SystemId, string> = {
  hfq: 'hfq',
  bullmq: 'plain BullMQ (limiter + retries)',
  retry: 'retry loop (no limiter)',
};

function pick<T extends string>(list: string | undefined, all: readonly T[], what: string): T[] {
  if (list === undefined) return [...all];
  const chosen = list.split(',').map((s) => s.trim()) as T[];
  for (const item of chosen) if (!all.includes(item)) throw new Error(`unknown ${what} "${item}"`);
  return chosen;
}

/**
 * `--quick` without `--scenarios`: one known limit, one noisy, a drop after noise, a short drop,
 * and a Free account (about 2.5 minutes on two loaded cores; with 3 as well it took 190 s).
 */
const QUICK_SCENARIOS: readonly ScenarioId[] = ['1a', '4b', '7', '8a', '11a'];

export const SCENARIOS = pick(
  values.scenarios ?? (QUICK ? QUICK_SCENARIOS.join(',') : undefined),
  ALL_SCENARIOS.map((s) => s.id),
  'scenario',
).map((id) => ALL_SCENARIOS.find((s) => s.id === id) as Scenario);
export const SYSTEMS = pick<SystemId>(values.systems, ['hfq', 'bullmq', 'retry'], 'system');
/** `--quick` keeps hfq on every scenario and runs the baselines on one known and one hidden limit. */
const QUICK_BASELINE_SCENARIOS: readonly ScenarioId[] = ['1a', '4b'];

export function systemsFor(scenario: Scenario): SystemId[] {
  if (!QUICK || values.systems !== undefined || QUICK_BASELINE_SCENARIOS.includes(scenario.id))
    return SYSTEMS;
  return SYSTEMS.filter((system) => system === 'hfq');
}
