/**
 * Sliding-window log: a request at `now` is admitted if the units admitted in
 * (now - windowMs, now] plus its own cost are at most `limit`. An admission at time `s`
 * therefore counts during [s, s + windowMs), and no half-open window of `windowMs` ever holds
 * more than `limit` admitted units. Exact; memory is one entry per admission in the window.
 */
import { assertLimitShape, type LimitDecision, type Limiter } from './limiter.js';

interface Entry {
  at: number;
  cost: number;
}

export class SlidingWindowLimiter implements Limiter {
  private entries: Entry[] = [];
  private head = 0;
  private used = 0;

  constructor(
    /** Changeable at run time (`ScheduledLimiter`): the entries in the window keep counting. */
    public limit: number,
    readonly windowMs: number,
  ) {
    assertLimitShape(limit, windowMs);
  }

  check(now: number, cost = 1): LimitDecision {
    this.expire(now);
    const oldest = this.entries[this.head];
    // After an admission the oldest counted unit is at worst this request itself.
    const resetMs = oldest ? oldest.at + this.windowMs - now : this.windowMs;
    if (this.used + cost <= this.limit) {
      return { allowed: true, remaining: this.limit - this.used - cost, retryAfterMs: 0, resetMs };
    }
    return { allowed: false, remaining: 0, retryAfterMs: this.waitFor(now, cost), resetMs };
  }

  commit(now: number, cost = 1): void {
    this.expire(now);
    this.entries.push({ at: now, cost });
    this.used += cost;
  }

  // Time until enough of the oldest entries expire to fit `cost`.
  private waitFor(now: number, cost: number): number {
    if (cost > this.limit) return Number.POSITIVE_INFINITY;
    let toFree = this.used + cost - this.limit;
    for (let index = this.head; index < this.entries.length; index++) {
      const entry = this.entries[index];
      if (!entry) break;
      toFree -= entry.cost;
      if (toFree <= 0) return entry.at + this.windowMs - now;
    }
    return this.windowMs;
  }

  private expire(now: number): void {
    for (let entry = this.entries[this.head]; entry && entry.at <= now - this.windowMs; ) {
      this.used -= entry.cost;
      this.head++;
      entry = this.entries[this.head];
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
