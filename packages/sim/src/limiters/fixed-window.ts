/**
 * Fixed window: time is cut into windows [k·windowMs, (k+1)·windowMs) of the clock; each
 * window admits at most `limit` units. A sliding window of `windowMs` can straddle two fixed
 * windows, so it may hold up to 2·limit.
 */
import { assertLimitShape, type LimitDecision, type Limiter } from './limiter.js';

export class FixedWindowLimiter implements Limiter {
  private windowStart = Number.NEGATIVE_INFINITY;
  private used = 0;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {
    assertLimitShape(limit, windowMs);
  }

  check(now: number, cost = 1): LimitDecision {
    this.roll(now);
    const resetMs = this.windowStart + this.windowMs - now;
    if (this.used + cost <= this.limit) {
      return { allowed: true, remaining: this.limit - this.used - cost, retryAfterMs: 0, resetMs };
    }
    const retryAfterMs =
      cost > this.limit ? Number.POSITIVE_INFINITY : this.windowStart + this.windowMs - now;
    return { allowed: false, remaining: 0, retryAfterMs, resetMs };
  }

  commit(now: number, cost = 1): void {
    this.roll(now);
    this.used += cost;
  }

  private roll(now: number): void {
    const start = Math.floor(now / this.windowMs) * this.windowMs;
    if (start > this.windowStart) {
      this.windowStart = start;
      this.used = 0;
    }
  }
}
