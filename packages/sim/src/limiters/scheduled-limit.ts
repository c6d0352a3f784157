/**
 * A sliding window whose limit changes during a run: from each schedule entry's `afterMs` after
 * the first request on, the limit is that entry's. The admissions already in the window keep
 * counting, as an upstream that lowers a limit still remembers what it let through.
 */
import type { LimitDecision, Limiter } from './limiter.js';
import type { SlidingWindowLimiter } from './sliding-window.js';

export class ScheduledLimiter implements Limiter {
  private origin: number | undefined;
  private readonly schedule: readonly { afterMs: number; limit: number }[];
  private readonly initial: number;

  constructor(
    private readonly inner: SlidingWindowLimiter,
    schedule: readonly { afterMs: number; limit: number }[],
  ) {
    this.initial = inner.limit;
    this.schedule = [...schedule].sort((a, b) => a.afterMs - b.afterMs);
  }

  get limit(): number {
    return this.inner.limit;
  }

  get windowMs(): number {
    return this.inner.windowMs;
  }

  check(now: number, cost = 1): LimitDecision {
    this.apply(now);
    return this.inner.check(now, cost);
  }

  commit(now: number, cost = 1): void {
    this.apply(now);
    this.inner.commit(now, cost);
  }

  private apply(now: number): void {
    this.origin ??= now;
    let limit = this.initial;
    for (const entry of this.schedule) if (now - this.origin >= entry.afterMs) limit = entry.limit;
    this.inner.limit = limit;
  }
}
