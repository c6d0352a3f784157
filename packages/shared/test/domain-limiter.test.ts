import { DomainLimiter, type DomainRef } from '@hfq/shared';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { redisUrl, testPrefix } from '../../../test/support/redis.js';

/** Largest count of stamps in any half-open window [t, t + w). Brute force over every start. */
function maxInWindow(stamps: number[], w: number): number {
  const sorted = [...stamps].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0; i < sorted.length; i++) {
    let j = i;
    while (j < sorted.length && (sorted[j] as number) < (sorted[i] as number) + w) j++;
    best = Math.max(best, j - i);
  }
  return best;
}

const connections: Redis[] = [];
afterEach(async () => {
  await Promise.all(connections.splice(0).map((c) => c.quit()));
});

function limiterOn(prefix: string) {
  const redis = new Redis(redisUrl());
  connections.push(redis);
  return new DomainLimiter(redis, prefix);
}

describe('DomainLimiter', () => {
  it('admits at most N per sliding window W across independent clients, at ≥ 97% of N/W', async () => {
    const prefix = testPrefix();
    const domain: DomainRef = { id: 'd1', windows: [{ max: 20, durationMs: 500 }] };
    const limiters = [limiterOn(prefix), limiterOn(prefix)];
    const gate = { gateKey: `${prefix}:gate`, ledgerKey: `${prefix}:ledger`, appNowMs: Date.now() };
    const stamps: number[] = [];
    const total = 120;
    let issued = 0;
    await Promise.all(
      Array.from({ length: 16 }, async (_, i) => {
        const limiter = limiters[i % 2] as DomainLimiter;
        while (issued < total) {
          issued++;
          const permit = await limiter.acquire({ domain, ...gate });
          if (permit.kind !== 'admitted') throw new Error(`unexpected ${permit.kind}`);
          stamps.push(permit.sentAt);
        }
      }),
    );
    expect(stamps).toHaveLength(total);
    expect(maxInWindow(stamps, 500)).toBeLessThanOrEqual(20);
    const sorted = stamps.sort((a, b) => a - b);
    const elapsed = (sorted.at(-1) as number) - (sorted[0] as number);
    // (total - 1) intervals at the ideal 20 per 500 ms
    const ideal = ((total - 1) / 20) * 500;
    expect(ideal / elapsed).toBeGreaterThanOrEqual(0.97);
  });

  it('lowers the learned rate once for a burst of 429s from requests already in flight', async () => {
    const prefix = testPrefix();
    const domain: DomainRef = { id: 'd2', windows: [{ max: 50, durationMs: 1000 }] };
    const limiter = limiterOn(prefix);
    const permit = await limiter.acquire({
      domain,
      gateKey: `${prefix}:g`,
      ledgerKey: `${prefix}:l`,
      appNowMs: 0,
    });
    if (permit.kind !== 'admitted') throw new Error('not admitted');
    const outcomes = await Promise.all(
      Array.from({ length: 64 }, () => limiter.recordThrottle(domain, permit.sentAt, 100)),
    );
    expect(outcomes.filter((o) => o.newEpisode)).toHaveLength(1);
    const state = await limiter.state('d2');
    expect(state.episodes).toBe(1);
    expect(state.rate).toBeLessThan(50);
    expect(state.recent429s).toBe(64);
  });
});
