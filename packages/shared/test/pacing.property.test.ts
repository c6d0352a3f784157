import { DomainLimiter, type DomainRef } from '@hfq/shared/internal';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keysUnder, redisUrl, testPrefix } from '../../../test/support/redis.js';

/**
 * Decision 2 as a property: whatever the arrival order, the number of callers and how they are
 * spread over connections, the domain limiter never admits more than N requests in any sliding
 * window W. Judged by the admission stamps the limiter returns (Redis TIME, ms), against the real
 * Redis, each run on a prefix of its own.
 */

interface Scenario {
  max: number;
  durationMs: number;
  /** One list per concurrent caller: the pause before each of its requests, ms. */
  callers: number[][];
}

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    max: fc.integer({ min: 3, max: 20 }),
    durationMs: fc.integer({ min: 100, max: 400 }),
    callerCount: fc.integer({ min: 1, max: 24 }),
  })
  .chain(({ max, durationMs, callerCount }) =>
    fc.record({
      max: fc.constant(max),
      durationMs: fc.constant(durationMs),
      // About 1 to 3 windows' worth of requests in all, so one run stays near a second.
      callers: fc.array(
        fc.array(
          // Half the pauses are 0 (bursts); the rest spread arrivals over up to one window.
          fc.oneof(fc.constant(0), fc.integer({ min: 1, max: durationMs })),
          { minLength: 1, maxLength: Math.max(1, Math.ceil((3 * max) / callerCount)) },
        ),
        { minLength: callerCount, maxLength: callerCount },
      ),
    }),
  );

/**
 * Most stamps in any half-open window [t, t + w): brute force from every stamp as a window start
 * (a window holding the most stamps can always be slid to start at one of them).
 */
function maxInWindow(stamps: readonly number[], w: number): number {
  let best = 0;
  for (const start of stamps) {
    let count = 0;
    for (const t of stamps) if (t >= start && t < start + w) count++;
    best = Math.max(best, count);
  }
  return best;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('DomainLimiter pacing (property, real Redis)', () => {
  // Two independent connections, as two worker processes would have; each has its own limiter.
  let connections: Redis[] = [];
  const used: string[] = [];

  beforeAll(() => {
    connections = [new Redis(redisUrl()), new Redis(redisUrl())];
  });

  afterAll(async () => {
    const [admin] = connections;
    if (admin) {
      for (const prefix of used) {
        const keys = await keysUnder(admin, prefix);
        if (keys.length > 0) await admin.unlink(...keys);
      }
    }
    await Promise.all(connections.map((c) => c.quit()));
  });

  it('never admits more than N in any sliding window W, under random arrivals and concurrency', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ max, durationMs, callers }) => {
        const prefix = testPrefix('pace');
        used.push(prefix);
        const limiters = connections.map((c) => new DomainLimiter(c, prefix));
        const domain: DomainRef = { id: 'paced', windows: [{ max, durationMs }] };
        const gate = { gateKey: `${prefix}:gate`, ledgerKey: `${prefix}:ledger`, appNowMs: Date.now() };
        const stamps: number[] = [];
        await Promise.all(
          callers.map(async (pauses, i) => {
            const limiter = limiters[i % limiters.length] as DomainLimiter;
            for (const pause of pauses) {
              if (pause > 0) await sleep(pause);
              const permit = await limiter.acquire({ domain, ...gate });
              if (permit.kind !== 'admitted') throw new Error(`permit ${permit.kind}, expected admitted`);
              stamps.push(permit.sentAt);
            }
          }),
        );
        const requests = callers.reduce((sum, pauses) => sum + pauses.length, 0);
        expect(stamps).toHaveLength(requests);
        const worst = maxInWindow(stamps, durationMs);
        expect(
          worst,
          `${worst} admitted within ${durationMs} ms (limit ${max}, ${callers.length} callers)`,
        ).toBeLessThanOrEqual(max);
      }),
      // Real time and real Redis: a failure is reported with its seed rather than shrunk for minutes.
      { numRuns: 20, endOnFailure: true },
    );
  }, 120_000);

  it('a late send moves its entry to the real send time in every request window, and adds nothing', async () => {
    const prefix = testPrefix('pace');
    used.push(prefix);
    const [redis] = connections as [Redis];
    const limiter = new DomainLimiter(redis, prefix);
    const domain: DomainRef = {
      id: 'late',
      windows: [
        { max: 5, durationMs: 1_000 },
        { tokens: 1_000, durationMs: 1_000 },
      ],
    };
    const gate = { gateKey: `${prefix}:gate`, ledgerKey: `${prefix}:ledger`, appNowMs: Date.now() };
    const permit = await limiter.acquire({ domain, ...gate, tokens: 7 });
    if (permit.kind !== 'admitted') throw new Error(`permit ${permit.kind}`);
    const keys = limiter.keys(domain.id);
    await limiter.recordLateSend(domain, permit.uid, permit.sentAt + 40);
    expect(Number(await redis.zscore(keys.window(0), permit.uid))).toBe(permit.sentAt + 40);
    // The token window counts by buckets that outlast the window by a bucket (50 ms here): a send
    // 40 ms late is still covered, and nothing moves.
    expect(Number(await redis.hget(keys.tokenWindow(1), 'sum'))).toBe(7);
    // An id the log does not hold (already trimmed, say) is not added back.
    await limiter.recordLateSend(domain, 'gone', permit.sentAt + 50);
    expect(await redis.zcard(keys.window(0))).toBe(1);
  });
});
