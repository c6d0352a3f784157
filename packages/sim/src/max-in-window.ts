/**
 * The largest number of events in any half-open window [a, a + windowMs), computed exactly with
 * two pointers over the sorted times. Same window rule as the sliding-window limiter, so a
 * limiter of `limit` per `windowMs` keeps this at or under `limit`.
 */
export function maxInWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    const last = sorted[end] ?? 0;
    while ((sorted[start] ?? last) <= last - windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}
