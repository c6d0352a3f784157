/**
 * The contract shared by the rate limiters.
 *
 * Time is passed in (`now`, in ms from any fixed origin, never decreasing), so the limiters are
 * pure state machines that tests drive without sleeping. `check` never counts anything;
 * `commit` counts an admission. A refused request is never committed, so rejected requests do
 * not count toward any window: a caller hammering a full limiter is admitted again as soon as
 * the window frees, exactly as if it had waited.
 */

export interface LimitDecision {
  allowed: boolean;
  /** Units still available after this request (when refused: 0). */
  remaining: number;
  /** When refused: ms until this request would be admitted (Infinity if its cost exceeds the limit). 0 when allowed. */
  retryAfterMs: number;
  /**
   * ms until the limiter frees quota, counting this request if it is admitted: the oldest counted
   * unit expires (sliding window), the window ends (fixed window), the bucket is full (token bucket).
   */
  resetMs: number;
}

export interface Limiter {
  readonly limit: number;
  readonly windowMs: number;
  /** Would a request of `cost` units be admitted at `now`? Counts nothing. */
  check(now: number, cost?: number): LimitDecision;
  /** Count an admitted request of `cost` units at `now`. */
  commit(now: number, cost?: number): void;
}

/** Check, and commit if admitted. */
export function tryAcquire(limiter: Limiter, now: number, cost = 1): LimitDecision {
  const decision = limiter.check(now, cost);
  if (decision.allowed) limiter.commit(now, cost);
  return decision;
}

export function assertLimitShape(limit: number, windowMs: number): void {
  if (!(Number.isFinite(limit) && limit > 0))
    throw new RangeError(`limit must be a positive number, got ${limit}`);
  if (!(Number.isFinite(windowMs) && windowMs > 0)) {
    throw new RangeError(`windowMs must be a positive number, got ${windowMs}`);
  }
}
