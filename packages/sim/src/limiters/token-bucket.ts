/**
 * Token bucket: `capacity` tokens (default `limit`), refilled continuously at
 * `limit / windowMs` per ms, starting full. A request takes `cost` tokens if that many are
 * there. Over any window of `windowMs` it admits at most capacity + limit units.
 */
import { assertLimitShape, type LimitDecision, type Limiter } from './limiter.js';

// Absorbs float error in the refill so a caller that waits exactly `retryAfterMs` is admitted.
const EPSILON = 1e-9;

export class TokenBucketLimiter implements Limiter {
  readonly capacity: number;
  private readonly ratePerMs: number;
  private tokens: number;
  private last: number | undefined;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    burst?: number,
  ) {
    assertLimitShape(limit, windowMs);
    this.capacity = burst ?? limit;
    if (!(this.capacity > 0)) throw new RangeError(`burst must be a positive number, got ${burst}`);
    this.ratePerMs = limit / windowMs;
    this.tokens = this.capacity;
  }

  check(now: number, cost = 1): LimitDecision {
    this.refill(now);
    if (this.tokens + EPSILON >= cost) {
      const left = Math.max(0, this.tokens - cost);
      return {
        allowed: true,
        remaining: Math.floor(left + EPSILON),
        retryAfterMs: 0,
        resetMs: (this.capacity - left) / this.ratePerMs,
      };
    }
    return {
      allowed: false,
      remaining: 0,
      retryAfterMs: cost > this.capacity ? Number.POSITIVE_INFINITY : (cost - this.tokens) / this.ratePerMs,
      resetMs: (this.capacity - this.tokens) / this.ratePerMs,
    };
  }

  commit(now: number, cost = 1): void {
    this.refill(now);
    this.tokens = Math.max(0, this.tokens - cost);
  }

  private refill(now: number): void {
    if (this.last !== undefined && now > this.last) {
      this.tokens = Math.min(this.capacity, this.tokens + (now - this.last) * this.ratePerMs);
    }
    this.last = Math.max(this.last ?? now, now);
  }
}
