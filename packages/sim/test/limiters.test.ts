import { describe, expect, test } from 'vitest';
import { mulberry32 } from '../src/hash.js';
import {
  FixedWindowLimiter,
  type Limiter,
  maxInWindow,
  SlidingWindowLimiter,
  TokenBucketLimiter,
  tryAcquire,
} from '../src/index.js';

interface Arrival {
  at: number;
  cost: number;
}

/** Random arrivals mixing bursts (same instant), close and spread gaps, some fractional. */
function arrivals(seed: number, count: number, windowMs: number, maxCost = 1): Arrival[] {
  const random = mulberry32(seed);
  let at = 0;
  return Array.from({ length: count }, () => {
    const pick = random();
    if (pick < 0.3) at += 0;
    else if (pick < 0.8) at += Math.floor(random() * (windowMs / 4));
    else if (pick < 0.95) at += random() * windowMs;
    else at += windowMs * (1 + random());
    return { at, cost: 1 + Math.floor(random() * maxCost) };
  });
}

/** The sliding-log rule by brute force: admitted units in (t - W, t] plus the cost must fit. */
function bruteSlidingLog(sequence: Arrival[], limit: number, windowMs: number): boolean[] {
  const admitted: Arrival[] = [];
  return sequence.map(({ at, cost }) => {
    const used = admitted
      .filter((entry) => entry.at > at - windowMs)
      .reduce((sum, entry) => sum + entry.cost, 0);
    const ok = used + cost <= limit;
    if (ok) admitted.push({ at, cost });
    return ok;
  });
}

function bruteFixedWindow(sequence: Arrival[], limit: number, windowMs: number): boolean[] {
  const used = new Map<number, number>();
  return sequence.map(({ at, cost }) => {
    const window = Math.floor(at / windowMs);
    const ok = (used.get(window) ?? 0) + cost <= limit;
    if (ok) used.set(window, (used.get(window) ?? 0) + cost);
    return ok;
  });
}

/** Largest sum of admitted units in any window [a, a + W), by brute force. */
function maxUnitsInWindow(admitted: Arrival[], windowMs: number): number {
  return Math.max(
    0,
    ...admitted.map((start) =>
      admitted
        .filter((entry) => entry.at >= start.at && entry.at < start.at + windowMs)
        .reduce((sum, entry) => sum + entry.cost, 0),
    ),
  );
}

function run(limiter: Limiter, sequence: Arrival[]): boolean[] {
  return sequence.map(({ at, cost }) => tryAcquire(limiter, at, cost).allowed);
}

describe('SlidingWindowLimiter', () => {
  test('admits exactly what a brute-force sliding log admits (random sequences)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const random = mulberry32(seed * 7919);
      const limit = 1 + Math.floor(random() * 10);
      const windowMs = 100 + Math.floor(random() * 2000);
      const maxCost = seed % 4 === 0 ? 4 : 1;
      const sequence = arrivals(seed, 300, windowMs, maxCost);
      const decisions = run(new SlidingWindowLimiter(limit, windowMs), sequence);
      expect(decisions, `seed ${seed}`).toEqual(bruteSlidingLog(sequence, limit, windowMs));
      const admitted = sequence.filter((_, index) => decisions[index]);
      expect(maxUnitsInWindow(admitted, windowMs)).toBeLessThanOrEqual(limit);
      if (maxCost === 1) {
        expect(
          maxInWindow(
            admitted.map((entry) => entry.at),
            windowMs,
          ),
        ).toBeLessThanOrEqual(limit);
      }
    }
  });

  test('retryAfterMs is the exact wait: admitted then, refused just before', () => {
    const fits = (admitted: Arrival[], at: number, cost: number): boolean =>
      admitted.filter((entry) => entry.at > at - 1000).reduce((sum, entry) => sum + entry.cost, 0) + cost <=
      5;
    for (let seed = 1; seed <= 50; seed++) {
      const limiter = new SlidingWindowLimiter(5, 1000);
      const admitted: Arrival[] = [];
      for (const { at, cost } of arrivals(seed, 200, 1000, 3)) {
        const decision = tryAcquire(limiter, at, cost);
        if (decision.allowed) {
          admitted.push({ at, cost });
          continue;
        }
        expect(decision.retryAfterMs).toBeGreaterThan(0);
        expect(fits(admitted, at + decision.retryAfterMs, cost)).toBe(true);
        expect(fits(admitted, at + decision.retryAfterMs - 0.001, cost)).toBe(false);
      }
    }
  });

  test('rejected requests do not count toward the window', () => {
    const limiter = new SlidingWindowLimiter(2, 1000);
    const admittedAt: number[] = [];
    for (let at = 0; at < 3000; at += 10) {
      if (tryAcquire(limiter, at).allowed) admittedAt.push(at);
    }
    // Hammering every 10 ms changes nothing: slots free exactly one window after each admission.
    expect(admittedAt).toEqual([0, 10, 1000, 1010, 2000, 2010]);
  });

  test('a cost over the limit is never admitted and says so', () => {
    const decision = new SlidingWindowLimiter(5, 1000).check(0, 6);
    expect(decision).toMatchObject({ allowed: false, retryAfterMs: Number.POSITIVE_INFINITY });
  });

  test('reports remaining and reset', () => {
    const limiter = new SlidingWindowLimiter(3, 1000);
    expect(tryAcquire(limiter, 100)).toEqual({ allowed: true, remaining: 2, retryAfterMs: 0, resetMs: 1000 });
    expect(tryAcquire(limiter, 400)).toEqual({ allowed: true, remaining: 1, retryAfterMs: 0, resetMs: 700 });
  });
});

describe('TokenBucketLimiter', () => {
  test('never admits more than capacity + rate × W in any window of W', () => {
    for (let seed = 1; seed <= 150; seed++) {
      const random = mulberry32(seed * 104729);
      const limit = 1 + Math.floor(random() * 10);
      const windowMs = 100 + Math.floor(random() * 2000);
      const burst = seed % 3 === 0 ? limit + Math.floor(random() * 5) : undefined;
      const sequence = arrivals(seed, 300, windowMs, seed % 5 === 0 ? 3 : 1);
      const decisions = run(new TokenBucketLimiter(limit, windowMs, burst), sequence);
      const admitted = sequence.filter((_, index) => decisions[index]);
      expect(maxUnitsInWindow(admitted, windowMs), `seed ${seed}`).toBeLessThanOrEqual(
        (burst ?? limit) + limit,
      );
      // Instantaneous bursts never exceed the capacity.
      const byInstant = new Map<number, number>();
      for (const entry of admitted) byInstant.set(entry.at, (byInstant.get(entry.at) ?? 0) + entry.cost);
      expect(Math.max(0, ...byInstant.values())).toBeLessThanOrEqual(burst ?? limit);
    }
  });

  test('admits a steady stream at exactly the refill rate, and after retryAfterMs', () => {
    const limiter = new TokenBucketLimiter(10, 1000, 1);
    for (let at = 0; at < 5000; at += 100) expect(tryAcquire(limiter, at).allowed).toBe(true);
    const refused = tryAcquire(limiter, 4950);
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterMs).toBeCloseTo(50, 6);
    expect(tryAcquire(limiter, 4950 + refused.retryAfterMs).allowed).toBe(true);
  });

  test('starts full: the burst is available at once', () => {
    const limiter = new TokenBucketLimiter(5, 1000, 8);
    const admitted = Array.from({ length: 10 }, () => tryAcquire(limiter, 0).allowed).filter(Boolean);
    expect(admitted).toHaveLength(8);
  });
});

describe('FixedWindowLimiter', () => {
  test('admits exactly what a brute-force per-window count admits', () => {
    for (let seed = 1; seed <= 150; seed++) {
      const random = mulberry32(seed * 15485863);
      const limit = 1 + Math.floor(random() * 10);
      const windowMs = 100 + Math.floor(random() * 2000);
      const sequence = arrivals(seed, 300, windowMs, seed % 4 === 0 ? 3 : 1);
      const decisions = run(new FixedWindowLimiter(limit, windowMs), sequence);
      expect(decisions, `seed ${seed}`).toEqual(bruteFixedWindow(sequence, limit, windowMs));
      const admitted = sequence.filter((_, index) => decisions[index]);
      // A sliding window can straddle two fixed windows.
      expect(maxUnitsInWindow(admitted, windowMs)).toBeLessThanOrEqual(2 * limit);
    }
  });

  test('a refused request waits for the window boundary', () => {
    const limiter = new FixedWindowLimiter(2, 1000);
    tryAcquire(limiter, 1200);
    tryAcquire(limiter, 1300);
    const refused = tryAcquire(limiter, 1400);
    expect(refused).toMatchObject({ allowed: false, retryAfterMs: 600 });
    expect(tryAcquire(limiter, 2000).allowed).toBe(true);
  });
});

test('limiters reject nonsense shapes', () => {
  expect(() => new SlidingWindowLimiter(0, 1000)).toThrow(RangeError);
  expect(() => new FixedWindowLimiter(1, 0)).toThrow(RangeError);
  expect(() => new TokenBucketLimiter(1, 1000, 0)).toThrow(RangeError);
});
