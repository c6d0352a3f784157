/**
 * The recent rate of completions, one definition for every ETA hfq shows: `hfq enqueue --wait`'s
 * progress line and the cockpit (`/status`, `hfq status`). Over a short window, so that 25 s into a
 * run both say what the run does now rather than averaging the idle minutes before it.
 */

/** The rate is measured over the last this many ms. */
export const RECENT_RATE_WINDOW_MS = 30_000;

/**
 * Completions per second from cumulative samples `[timeMs, total]`, oldest first, the first being
 * the window's left edge (the caller keeps one sample at or before `nowMs - windowMs`, or the
 * run's start): (newest total − left edge's total) ÷ time since the left edge. Undefined before
 * there is a measure (no samples, or under a second since the left edge).
 */
export function recentRate(
  samples: readonly (readonly [number, number])[],
  nowMs: number,
): number | undefined {
  const first = samples[0];
  const last = samples[samples.length - 1];
  if (!first || !last) return undefined;
  const spanMs = nowMs - first[0];
  if (spanMs < 1_000) return undefined;
  return (last[1] - first[1]) / (spanMs / 1000);
}

/** Time left at `rate` per second for `remaining` items, ms; undefined when nothing moves or nothing is left. */
export function etaMs(remaining: number, rate: number | undefined): number | undefined {
  return remaining > 0 && rate !== undefined && rate > 0 ? (remaining / rate) * 1000 : undefined;
}
