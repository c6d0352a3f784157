/**
 * What the upstream saw, from the simulator's request log: the figures the limit benchmarks
 * compare (elapsed time between the first and the last request, 429 share, the most admitted
 * requests in any sliding window, how soon the admitted rate reached a share of the true limit).
 */
import type { RequestRecord } from '@hfq/sim';

export interface UpstreamFigures {
  /** Inference requests that reached the upstream (429s included). */
  requests: number;
  /** Answered 429. */
  throttled: number;
  /** `throttled / requests` (0 when there were none). */
  throttledShare: number;
  /** First and last request arrival (simulator clock, ms); null without requests. */
  firstAt: number | null;
  lastAt: number | null;
  /** `lastAt - firstAt`, ms. */
  elapsedMs: number;
  /** When the first 429s came, ms after the first request (at most 50 listed). */
  throttledAtMs: number[];
  /** Time from the first request until the admitted (non-429) count in the sliding window first reached the target; null if never. */
  timeToRateMs: number | null;
}

/**
 * @param records - the run's requests, in any order
 * @param windowMs - the limit's window (for the time-to-rate figure)
 * @param rateTarget - admitted requests per window that count as "reached" (for example 0.85 × the true limit)
 */
export function upstreamFigures(
  records: readonly RequestRecord[],
  windowMs: number,
  rateTarget: number,
): UpstreamFigures {
  const sorted = [...records].sort((a, b) => a.t - b.t);
  const throttled = sorted.filter((r) => r.status === 429).length;
  const firstAt = sorted[0]?.t ?? null;
  const lastAt = sorted.at(-1)?.t ?? null;
  return {
    requests: sorted.length,
    throttled,
    throttledShare: sorted.length === 0 ? 0 : throttled / sorted.length,
    firstAt,
    lastAt,
    elapsedMs: firstAt === null || lastAt === null ? 0 : lastAt - firstAt,
    throttledAtMs:
      firstAt === null
        ? []
        : sorted
            .filter((r) => r.status === 429)
            .slice(0, 50)
            .map((r) => Math.round(r.t - firstAt)),
    timeToRateMs: firstAt === null ? null : timeToRate(sorted, windowMs, rateTarget, firstAt),
  };
}

/** First time the admitted requests in the window (t - windowMs, t] reach `target`, measured from `origin`. */
function timeToRate(
  sorted: readonly RequestRecord[],
  windowMs: number,
  target: number,
  origin: number,
): number | null {
  const admitted = sorted.filter((r) => r.status !== 429).map((r) => r.t);
  const needed = Math.ceil(target);
  let start = 0;
  for (let end = 0; end < admitted.length; end++) {
    const t = admitted[end] as number;
    while ((admitted[start] as number) <= t - windowMs) start++;
    if (end - start + 1 >= needed) return t - origin;
  }
  return null;
}
