import { DomainLimiter, type DomainRef, type LimiterOptions } from '@hfq/shared';
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

function limiterOn(prefix: string, options: LimiterOptions = {}) {
  const redis = new Redis(redisUrl());
  connections.push(redis);
  return new DomainLimiter(redis, prefix, options);
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

  it('steps back just below an edge found by probing, and cuts by beta when a 429 follows no raise', async () => {
    const prefix = testPrefix();
    // One step is 1 request; a clean window of 200 ms raises the rate once, with no quiet time.
    const domain: DomainRef = { id: 'd3', windows: [{ max: 50, durationMs: 200 }] };
    const limiter = limiterOn(prefix, { quietMs: 0 });
    const gate = { gateKey: `${prefix}:g`, ledgerKey: `${prefix}:l`, appNowMs: 0 };
    const burst = async (n: number) => {
      let last = 0;
      for (let i = 0; i < n; i++) {
        const permit = await limiter.acquire({ domain, ...gate });
        if (permit.kind !== 'admitted') throw new Error(`unexpected ${permit.kind}`);
        last = permit.sentAt;
      }
      return last;
    };

    // First episode, never raised: the hidden limit (9 sends in the window) is learned in one step.
    await limiter.recordThrottle(domain, await burst(10), 0);
    const learned = (await limiter.state('d3')).rate as number;
    expect(learned).toBe(9);

    // Clean windows raise it by a step each; a 429 then is the probe finding the edge.
    await new Promise((r) => setTimeout(r, 450));
    await burst(1);
    await new Promise((r) => setTimeout(r, 250));
    const probed = await burst(12);
    const raised = (await limiter.state('d3')).rate as number;
    expect(raised).toBeGreaterThan(learned);
    const probe = await limiter.recordThrottle(domain, probed, 0);
    expect(probe.newEpisode).toBe(true);
    // Not raised * 0.7: just below the edge (one step down, or what the window let through).
    expect(probe.rate).toBeGreaterThan(raised * 0.7);
    expect(probe.rate).toBeLessThanOrEqual(raised - 1);

    // A 429 right after, with no raise in between: the edge moved, so cut by beta.
    const again = await limiter.recordThrottle(domain, await burst(1), 0);
    expect(again.newEpisode).toBe(true);
    expect(again.rate).toBeCloseTo(probe.rate * 0.7, 2);
  });

  it('backs off with full jitter on consecutive episodes when the upstream names no wait, up to the cap', async () => {
    const prefix = testPrefix();
    const domain: DomainRef = { id: 'd4', windows: [{ max: 50, durationMs: 1000 }] };
    // random 0.5: each pause is half of min(cap, base·2^(episodes-1)).
    const limiter = limiterOn(prefix, { random: () => 0.5, backoffBaseMs: 100, backoffCapMs: 300 });
    const gate = { gateKey: `${prefix}:g`, ledgerKey: `${prefix}:l`, appNowMs: 0 };
    const pauses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const permit = await limiter.acquire({ domain, ...gate });
      if (permit.kind !== 'admitted') throw new Error(`unexpected ${permit.kind}`);
      const outcome = await limiter.recordThrottle(domain, permit.sentAt, undefined);
      expect(outcome.newEpisode).toBe(true);
      pauses.push(outcome.pauseMs);
    }
    expect(pauses).toEqual([50, 100, 150, 150]);
  });
});
