/**
 * Two figures the batch planner takes that hfq must choose itself (see README, "Deadlines and the
 * batch route"): the batch turnaround to plan with, and the margin kept before a deadline.
 */

export interface TurnaroundOptions {
  /** Fewer observations than this: not trusted alone. @defaultValue `5` */
  minSamples?: number;
  /** Which share of observed batches must have come back within the figure. @defaultValue `0.9` */
  percentile?: number;
}

/**
 * The turnaround to plan with. Until `minSamples` batches were observed, the larger of the
 * configured estimate and the longest observed; then the `percentile` of the observed ones (a
 * provider that gets faster is believed, one that gets slower too).
 */
export function planningTurnaroundMs(
  observedMs: readonly number[],
  configuredMs: number,
  options: TurnaroundOptions = {},
): number {
  const minSamples = options.minSamples ?? 5;
  const percentile = options.percentile ?? 0.9;
  if (!(percentile > 0 && percentile <= 1))
    throw new RangeError(`percentile must be in (0, 1], got ${percentile}`);
  const observed = observedMs.filter((ms) => Number.isFinite(ms) && ms >= 0);
  if (observed.length < minSamples) return Math.max(configuredMs, ...observed);
  const sorted = [...observed].sort((a, b) => a - b);
  return sorted[Math.ceil(percentile * sorted.length) - 1] as number;
}

/** The margin before a deadline: 5% of the time left, at least two minutes (the cancel, the downloads, a slower real time). */
export function deadlineMarginMs(remainingMs: number): number {
  return Math.max(120_000, Math.round(remainingMs * 0.05));
}
