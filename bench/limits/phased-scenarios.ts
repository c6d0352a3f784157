/**
 * `pnpm bench:limits`: scenarios whose upstream changes over time in phases (a noisy spell, a drop
 * of the limit, a slow drift, a low hidden limit of a Free account). Each phase lasts a stated
 * time from the upstream's first request (the simulator's `schedule` and `busySchedule`); the
 * ideal time integrates what the upstream allows, phase by phase, until every job is done.
 */
import type { RateLimitConfig, ThrottleStyle } from '@hfq/sim';
import { QUICK } from './options.js';

/** One phase of the upstream: its limit per window and the share a busy provider answers 429 at random. */
export interface Phase {
  /** How long the phase lasts (ms); the last phase lasts until the run ends. */
  forMs: number;
  limit: number;
  busy?: number;
  /** The 429 share of this phase is reported apart (for example while a lowered limit holds). */
  watched?: boolean;
}

export interface PhasedUpstream {
  phases: Phase[];
  windowMs: number;
}

/** When each phase starts (ms from the first request). */
export function phaseStarts(phases: readonly Phase[]): number[] {
  const starts: number[] = [];
  let at = 0;
  for (const phase of phases) {
    starts.push(at);
    at += phase.forMs;
  }
  return starts;
}

/** The simulator's limit and busy schedule for the phases. */
export function phasedLimit(up: PhasedUpstream): {
  limit: RateLimitConfig;
  busySchedule: { afterMs: number; share: number }[];
} {
  const starts = phaseStarts(up.phases);
  const first = up.phases[0] as Phase;
  return {
    limit: {
      algorithm: 'sliding-window',
      limit: first.limit,
      windowMs: up.windowMs,
      schedule: up.phases.slice(1).map((p, i) => ({ afterMs: starts[i + 1] as number, limit: p.limit })),
    },
    busySchedule: up.phases.map((p, i) => ({ afterMs: starts[i] as number, share: p.busy ?? 0 })),
  };
}

/**
 * The least time `jobs` jobs can take: every phase sends at its limit, and a share `busy` of its
 * requests are refused at random (each counts against the limit), so it completes
 * limit × (1 − busy) jobs per window.
 */
export function phasedIdealMs(up: PhasedUpstream, jobs: number): number {
  let left = jobs;
  let at = 0;
  up.phases.forEach((phase, i) => {
    if (left <= 0) return;
    const perMs = (phase.limit * (1 - (phase.busy ?? 0))) / up.windowMs;
    const last = i === up.phases.length - 1;
    const canDo = last ? Number.POSITIVE_INFINITY : perMs * phase.forMs;
    if (canDo >= left) {
      at += left / perMs;
      left = 0;
    } else {
      at += phase.forMs;
      left -= canDo;
    }
  });
  return at;
}

/**
 * A watched phase is measured from this long after it starts: the time the learner is given to
 * follow a drop (an upstream whose sliding window still holds the old rate refuses nearly
 * everything for most of a window after a drop, whatever the client does).
 */
export const WATCH_SETTLE_MS = 2_000;

/** The 429 share in the watched phases after their settle time, from the per-second timeline (whole seconds inside them). */
export function watchedShare(
  up: PhasedUpstream,
  timeline: { admitted: number[]; throttled: number[] },
): { share: number; requests: number } | null {
  const starts = phaseStarts(up.phases);
  let admitted = 0;
  let throttled = 0;
  let any = false;
  up.phases.forEach((phase, i) => {
    if (!phase.watched) return;
    any = true;
    const from = Math.ceil(((starts[i] as number) + WATCH_SETTLE_MS) / 1000);
    const to = Math.floor(((starts[i] as number) + phase.forMs) / 1000);
    for (let s = from; s < to; s++) {
      admitted += timeline.admitted[s] ?? 0;
      throttled += timeline.throttled[s] ?? 0;
    }
  });
  if (!any || admitted + throttled === 0) return null;
  return { share: throttled / (admitted + throttled), requests: admitted + throttled };
}

/** A limit that moves by one every `stepMs` from `from` to `to` (both included). */
function drift(from: number, to: number, stepMs: number): Phase[] {
  const phases: Phase[] = [];
  const step = from > to ? -1 : 1;
  for (let limit = from; limit !== to + step; limit += step) phases.push({ forMs: stepMs, limit });
  return phases;
}

/** Quick runs keep each phase's shape with shorter spans. */
const q = (full: number, quick: number) => (QUICK ? quick : full);

export const NO_HEADERS: Partial<ThrottleStyle> = { retryAfter: 'none', rateLimitHeaders: 'none' };
export const RETRY_AFTER: Partial<ThrottleStyle> = { retryAfter: 'seconds', rateLimitHeaders: 'none' };

/** The phases of each phased scenario (the scenario list in scenarios.ts names them). */
export const PHASED = {
  /** 20% random 429s, then a clean spell, then the limit drops to a third, then rises back. */
  noiseThenDrop: {
    windowMs: 1_000,
    phases: [
      { forMs: q(15_000, 6_000), limit: 50, busy: 0.2 },
      { forMs: q(10_000, 4_000), limit: 50 },
      { forMs: q(20_000, 8_000), limit: 17, watched: true },
      { forMs: 0, limit: 50 },
    ],
  },
  /** 50/s, 20/s for 12 s (10 s quick), 50/s again. */
  shortDrop: {
    windowMs: 1_000,
    phases: [
      { forMs: q(10_000, 5_000), limit: 50 },
      { forMs: q(12_000, 10_000), limit: 20, watched: true },
      { forMs: 0, limit: 50 },
    ],
  },
  /** 50/s, 20/s for 40 s (25 s quick), 50/s again. */
  longDrop: {
    windowMs: 1_000,
    phases: [
      { forMs: q(10_000, 5_000), limit: 50 },
      { forMs: q(40_000, 25_000), limit: 20, watched: true },
      { forMs: 0, limit: 50 },
    ],
  },
  /** 50/s, drifting down to 30/s over 60 s (20 s quick), and back up as slowly. */
  drift: {
    windowMs: 1_000,
    phases: [
      { forMs: 5_000, limit: 50 },
      ...drift(49, 30, q(3_000, 1_000)),
      ...drift(31, 50, q(3_000, 1_000)),
      { forMs: 0, limit: 50 },
    ],
  },
  /** Two regime changes: 10% noise at 50/s, then a clean 25/s, then 40/s with 2% noise. */
  twoRegimes: {
    windowMs: 1_000,
    phases: [
      { forMs: q(12_000, 6_000), limit: 50, busy: 0.1 },
      { forMs: q(15_000, 8_000), limit: 25, watched: true },
      { forMs: 0, limit: 40, busy: 0.02 },
    ],
  },
} satisfies Record<string, PhasedUpstream>;

/** Jobs per phased run: enough for every phase and a few seconds of the last. */
export const PHASED_JOBS = {
  noiseThenDrop: { full: 1_900, quick: 750 },
  shortDrop: { full: 1_500, quick: 700 },
  longDrop: { full: 1_800, quick: 1_000 },
  drift: { full: 5_300, quick: 2_100 },
  twoRegimes: { full: 1_500, quick: 800 },
} as const;
