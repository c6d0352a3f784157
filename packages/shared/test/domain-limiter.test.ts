import type { LimiterOptions } from '@hfq/shared';
import {
  type AcquireResult,
  CreditState,
  creditScope,
  DomainLimiter,
  type DomainRef,
  redisTimeMs,
} from '@hfq/shared/internal';
import { describe, expect, it } from 'vitest';
import { monitorCommands, redisForEachTest } from '../../../test/support/redis.js';
import { waitFor } from '../../../test/support/wait.js';

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

const { connect, newPrefix } = redisForEachTest('lim');

function limiterOn(prefix: string, options: LimiterOptions = {}, redis = connect()) {
  return new DomainLimiter(redis, prefix, options);
}

const gateOf = (prefix: string) => ({
  gateKey: `${prefix}:gate`,
  ledgerKey: `${prefix}:ledger`,
  appNowMs: Date.now(),
});

function admitted(permit: AcquireResult): { sentAt: number } {
  if (permit.kind !== 'admitted') throw new Error(`permit ${permit.kind}, expected admitted`);
  return permit;
}

/**
 * Take permits one after another for `ms` and at least `least` of them: a steady admitted rate (the
 * limiter paces it).
 */
async function sendFor(limiter: DomainLimiter, domain: DomainRef, prefix: string, ms: number, least = 0) {
  const sent: number[] = [];
  const until = Date.now() + ms;
  while (Date.now() < until || sent.length < least)
    sent.push(admitted(await limiter.acquire({ domain, ...gateOf(prefix) })).sentAt);
  return sent;
}

/** The learned rate, the configured one when none was learned. */
async function rateOf(limiter: DomainLimiter, domain: DomainRef): Promise<number> {
  const configured = (domain.windows[0] as { max: number }).max;
  return (await limiter.state(domain.id)).rate ?? configured;
}

describe('DomainLimiter pacing', () => {
  it('admits at most N per sliding window W across independent clients', async () => {
    const prefix = newPrefix();
    const domain: DomainRef = { id: 'd1', windows: [{ max: 20, durationMs: 500 }] };
    const limiters = [limiterOn(prefix), limiterOn(prefix)];
    const stamps: number[] = [];
    const total = 120;
    let issued = 0;
    await Promise.all(
      Array.from({ length: 16 }, async (_, i) => {
        const limiter = limiters[i % 2] as DomainLimiter;
        while (issued < total) {
          issued++;
          stamps.push(admitted(await limiter.acquire({ domain, ...gateOf(prefix) })).sentAt);
        }
      }),
    );
    expect(stamps).toHaveLength(total);
    expect(maxInWindow(stamps, 500)).toBeLessThanOrEqual(20);
  });

  it('keeps N per window across an override that restarts the learned state', async () => {
    // An override deletes the learned state (its send counts among it) while the window's log
    // still holds the sends before it: the permits after it must still count them.
    const prefix = newPrefix();
    const limiter = limiterOn(prefix);
    const domain: DomainRef = { id: 'reset', windows: [{ max: 100, durationMs: 1000 }] };
    const burst = (count: number) =>
      Promise.all(
        Array.from(
          { length: count },
          async () => admitted(await limiter.acquire({ domain, ...gateOf(prefix) })).sentAt,
        ),
      );
    const before = await burst(40);
    await limiter.setOverride(domain.id, { limit: 60 });
    const after = await burst(40);
    expect(maxInWindow([...before, ...after], 1000)).toBeLessThanOrEqual(60);
    // The window was full at 60: the last of the second burst waited for the first burst's sends to age out.
    expect(Math.max(...after) - Math.min(...before)).toBeGreaterThanOrEqual(1000);
  });

  it('moves the permits already reserved when the rate rises, and keeps N per window', async () => {
    const prefix = newPrefix();
    const redis = connect();
    const limiter = limiterOn(prefix, {}, redis);
    const domain: DomainRef = { id: 'raised', windows: [{ max: 20, durationMs: 1000 }] };
    // 2 per second: 16 requests reserve slots up to 7.5 s ahead.
    await limiter.setOverride(domain.id, { limit: 2 });
    const stamps: number[] = [];
    const all = Promise.all(
      Array.from({ length: 16 }, async () => {
        stamps.push(admitted(await limiter.acquire({ domain, ...gateOf(prefix) })).sentAt);
      }),
    );
    await waitFor(async () => stamps.length >= 1, 'the first permit');
    const state = await redis.hmget(limiter.keys(domain.id).state, 'tat', 'slotK');
    const raisedAt = await redisTimeMs(redis);
    // Every request holds a slot, the last one about 7.5 s ahead.
    expect(Number(state[1])).toBe(16);
    expect(Number(state[0]) - raisedAt).toBeGreaterThan(6_000);
    await limiter.setOverride(domain.id, { limit: 20 });
    await all;
    // At the old spacing the last would leave 7 s after the raise; the slots moved to 20 per
    // second, and each waiter asks again halfway through its wait, so the last leaves by about 4 s.
    expect(Math.max(...stamps) - raisedAt).toBeLessThan(5_500);
    expect(maxInWindow(stamps, 1000)).toBeLessThanOrEqual(20);
    const before = stamps.filter((t) => t < raisedAt);
    expect(maxInWindow(before, 1000)).toBeLessThanOrEqual(2);
  });

  it('keeps the permits already reserved when a cut makes their waits longer than the longest reservation', async () => {
    const prefix = newPrefix();
    const redis = connect();
    // Default options (reservations of at most 10 s): a cut to a twentieth stretches the slots
    // given out (up to 0.8 s ahead) to 16 s, past it.
    const limiter = limiterOn(prefix, {}, redis);
    const domain: DomainRef = { id: 'cut', windows: [{ max: 20, durationMs: 1000 }] };
    const results: AcquireResult[] = [];
    const all = Promise.all(
      Array.from({ length: 16 }, async () => {
        results.push(await limiter.acquire({ domain, ...gateOf(prefix) }));
      }),
    );
    await waitFor(async () => results.length >= 1, 'the first permit');
    const cutAt = await redisTimeMs(redis);
    await limiter.setOverride(domain.id, { limit: 1 });
    await all;
    // Every request kept its slot and was admitted; none was sent back to wait in the queue.
    expect(results.map((r) => (r.kind === 'wait' ? `wait ${r.waitMs}` : r.kind))).toEqual(
      Array(16).fill('admitted'),
    );
    const stamps = results.map((r) => admitted(r).sentAt);
    // Spread at the new spacing: never more than 1 in a second once the cut is in force.
    const afterCut = stamps.filter((t) => t > cutAt + 1_100);
    expect(afterCut.length).toBeGreaterThan(10);
    expect(maxInWindow(afterCut, 1000)).toBeLessThanOrEqual(1);
  }, 60_000);

  it('refuses at commit a permit reserved before the credit gate closed', async () => {
    const prefix = newPrefix();
    const redis = connect();
    const limiter = limiterOn(prefix, {}, redis);
    const credits = new CreditState(redis, prefix);
    const scope = creditScope({ id: 'acme' });
    const domain: DomainRef = { id: 'gated', windows: [{ max: 2, durationMs: 1_000 }] };
    const input = {
      domain,
      gateKey: credits.gateKey(scope),
      ledgerKey: credits.ledgerKey(scope, Date.now()),
      appNowMs: Date.now(),
    };
    admitted(await limiter.acquire(input));
    // The second request reserves the next slot (about half a second away) and waits for it.
    // Both commands go out on one connection, so Redis runs the reservation before the 402 mark.
    const reserved = limiter.acquire(input);
    await credits.markExhausted(scope, 'credits exhausted (402)', Date.now());
    const outcome = await reserved;
    expect(outcome.kind).toBe('gate');
  });

  it('keeps the audit list within its bound, with a lifetime', async () => {
    const prefix = newPrefix();
    const redis = connect();
    const limiter = limiterOn(prefix, { audit: true, auditMax: 20 }, redis);
    const domain: DomainRef = { id: 'audited', windows: [{ max: 1000, durationMs: 1000 }] };
    const stamps: number[] = [];
    for (let i = 0; i < 50; i++) {
      stamps.push(admitted(await limiter.acquire({ domain, ...gateOf(prefix) })).sentAt);
      expect(await redis.llen(limiter.keys(domain.id).audit)).toBeLessThanOrEqual(20);
    }
    expect(await limiter.auditLog(domain.id)).toEqual(stamps.slice(-20));
    expect(await redis.pttl(limiter.keys(domain.id).audit)).toBeGreaterThan(0);
  });

  it('refreshes TTLs and trims once per bucket, yet every key outlives its last write, a new one too', async () => {
    const prefix = newPrefix();
    const redis = connect();
    const limiter = limiterOn(prefix, {}, redis);
    // A 2 min primary window: the detector's buckets are 15 s, so these permits share one or two
    // (and a window this long is not spaced: none waits).
    const domain: DomainRef = {
      id: 'upkeep',
      windows: [
        { max: 1_000, durationMs: 120_000 },
        { tokens: 1_000_000, durationMs: 120_000 },
      ],
    };
    const keys = limiter.keys(domain.id);
    const domainKeys = [keys.state, keys.window(0), keys.tokenWindow(1)];
    const { seen, stop: stopMonitor } = await monitorCommands();
    for (let i = 0; i < 20; i++) admitted(await limiter.acquire({ domain, ...gateOf(prefix), tokens: 5 }));
    // A key lost mid-bucket (evicted, deleted by hand) is written again with a TTL at once.
    await redis.del(keys.window(0), keys.tokenWindow(1));
    admitted(await limiter.acquire({ domain, ...gateOf(prefix), tokens: 5 }));
    await waitFor(
      () => seen.filter((l) => l.startsWith('HSET') && l.includes(`${keys.state} `)).length >= 21,
      'the permits to show',
    );
    stopMonitor();
    const calls = (command: string, key: string) =>
      seen.filter((l) => l.startsWith(`${command} ${key} `) || l === `${command} ${key}`).length;
    // Per request, the state's TTL once per bucket (two at most here), a window's also when it was new.
    expect(calls('PEXPIRE', keys.state)).toBeLessThanOrEqual(2);
    expect(calls('PEXPIRE', keys.window(0))).toBeLessThanOrEqual(3);
    expect(calls('PEXPIRE', keys.tokenWindow(1))).toBeLessThanOrEqual(3);
    expect(calls('ZREMRANGEBYSCORE', keys.window(0))).toBeLessThanOrEqual(2);
    // Each key outlives its last write by at least its own TTL: 30 days, 2 spans + 1 s, the ring.
    expect(await redis.pttl(keys.state)).toBeGreaterThan(29 * 86_400_000);
    expect(await redis.pttl(keys.window(0))).toBeGreaterThan(2 * 120_000);
    expect(await redis.pttl(keys.tokenWindow(1))).toBeGreaterThan(120_000);
    for (const key of domainKeys) expect(await redis.exists(key), key).toBe(1);
    // Still a limit: the logs hold every send since the keys were lost.
    expect(await redis.zcard(keys.window(0))).toBe(1);
    expect(Number(await redis.hget(keys.tokenWindow(1), 'sum'))).toBe(5);
  });

  it('checks the credit gate and the budget inside the permit on one Redis node', async () => {
    const prefix = newPrefix();
    const redis = connect();
    const limiter = limiterOn(prefix, {}, redis);
    const credits = new CreditState(redis, prefix);
    const scope = creditScope({ id: 'acme' });
    // A window longer than a minute is not spaced: each permit is one attempt.
    const domain: DomainRef = { id: 'folded', windows: [{ max: 100, durationMs: 120_000 }] };
    const input = {
      domain,
      gateKey: credits.gateKey(scope),
      ledgerKey: credits.ledgerKey(scope, Date.now()),
      appNowMs: Date.now(),
      ledgerField: 'hfRouterUsd',
      budgetUsd: 1,
    };
    admitted(await limiter.acquire(input)); // the script is loaded now: no NOSCRIPT retry below
    const { seen, stop: stopMonitor } = await monitorCommands();
    admitted(await limiter.acquire(input));
    await redis.hset(input.ledgerKey, 'hfRouterUsd', '1.5');
    expect(await limiter.acquire(input)).toEqual({ kind: 'budget', spentUsd: 1.5 });
    await redis.hdel(input.ledgerKey, 'hfRouterUsd');
    await credits.markExhausted(scope, 'credits exhausted (402)', Date.now());
    expect((await limiter.acquire(input)).kind).toBe('gate');
    await waitFor(
      () => seen.filter((l) => l.startsWith('HMGET') && l.includes(input.gateKey)).length >= 3,
      'the checks to show',
    );
    stopMonitor();
    // One script per attempt: the gate read and the window's count come from the same EVALSHA.
    const scripts = seen.filter((l) => /^evalsha /i.test(l));
    const permits = scripts.filter((l) => l.includes(`${limiter.keys(domain.id).state} `));
    expect(permits).toHaveLength(3);
    for (const permit of permits) expect(permit).toContain(input.gateKey);
    // No credit check of its own.
    expect(scripts).toHaveLength(3);
    expect(await redis.zcard(limiter.keys(domain.id).window(0))).toBe(2);
  });

  it("reads the operator's override from its copy in the state, the key only when the copy is gone", async () => {
    const prefix = newPrefix();
    const redis = connect();
    const limiter = limiterOn(prefix, {}, redis);
    // Not spaced (longer than a minute): the sixth permit in the window is refused at once.
    const domain: DomainRef = { id: 'copied', windows: [{ max: 50, durationMs: 120_000 }] };
    const keys = limiter.keys(domain.id);
    await limiter.setOverride(domain.id, { limit: 5 });
    const { seen, stop: stopMonitor } = await monitorCommands();
    for (let i = 0; i < 5; i++) admitted(await limiter.acquire({ domain, ...gateOf(prefix) }));
    expect((await limiter.acquire({ domain, ...gateOf(prefix) })).kind).toBe('wait');
    // The state expired (or was written before the copy): the next permit reads the key, once.
    await redis.del(keys.state);
    expect((await limiter.acquire({ domain, ...gateOf(prefix) })).kind).toBe('wait');
    expect((await limiter.acquire({ domain, ...gateOf(prefix) })).kind).toBe('wait');
    await waitFor(
      () => seen.filter((l) => l.startsWith('HMGET') && l.includes(`${keys.state} `)).length >= 8,
      'the permits to show',
    );
    stopMonitor();
    expect(seen.filter((l) => l === `GET ${keys.override}`)).toHaveLength(1);
    // An override set for a while lapses by its copy too.
    await limiter.setOverride(domain.id, { limit: 5, forMs: 300 });
    expect((await limiter.acquire({ domain, ...gateOf(prefix) })).kind).toBe('wait');
    await new Promise((r) => setTimeout(r, 400));
    admitted(await limiter.acquire({ domain, ...gateOf(prefix) }));
  });

  it('answers a permit on a token window of 100,000 sends with as few Redis operations as on an empty one', async () => {
    const prefix = newPrefix();
    const redis = connect();
    const limiter = limiterOn(prefix, {}, redis);
    const domain = (id: string): DomainRef => ({
      id,
      windows: [{ tokens: 1_000_000, durationMs: 86_400_000 }],
    });
    const big = domain('big');
    const small = domain('small');
    // Fill one window with 100,000 sends of one token each, 500 in flight at a time.
    for (let done = 0; done < 100_000; done += 500) {
      await Promise.all(
        Array.from({ length: 500 }, () => limiter.acquire({ domain: big, ...gateOf(prefix), tokens: 1 })),
      );
    }
    await limiter.acquire({ domain: small, ...gateOf(prefix), tokens: 1 });

    // Count the commands each permit runs on its window key, as Redis reports them (MONITOR).
    const { seen, stop: stopMonitor } = await monitorCommands();
    const opsOn = async (ref: DomainRef) => {
      const key = limiter.keys(ref.id).tokenWindow(0);
      const before = seen.length;
      admitted(await limiter.acquire({ domain: ref, ...gateOf(prefix), tokens: 1 }));
      await waitFor(
        () => seen.slice(before).some((line) => line.includes(key)),
        'the monitor to see the permit',
      );
      // The script's last write is the state's HSET (its PEXPIRE only once per bucket): wait for it.
      await waitFor(
        () =>
          seen
            .slice(before)
            .some((line) => line.startsWith('HSET') && line.includes(`${limiter.keys(ref.id).state} `)),
        'the permit to end',
      );
      return seen.slice(before).filter((line) => line.includes(key)).length;
    };
    const onBig = await opsOn(big);
    const onSmall = await opsOn(small);
    stopMonitor();
    expect(onBig).toBeLessThanOrEqual(onSmall);
    expect(onBig).toBeLessThanOrEqual(6);
    // Still a limit: the window holds what it admitted.
    const state = await redis.hget(limiter.keys(big.id).tokenWindow(0), 'sum');
    expect(Number(state)).toBe(100_001);
  }, 120_000);
});

describe('what a 429 means', () => {
  // A primary window of 200 ms: the detector's buckets are 50 ms, its lookback 400 ms.
  const domainOf = (id: string): DomainRef => ({ id, windows: [{ max: 50, durationMs: 200 }] });

  it('lowers the rate only when the 429 share is beyond what the noise level explains', async () => {
    const prefix = newPrefix();
    const limiter = limiterOn(prefix);
    const domain = domainOf('steady');
    const sent = await sendFor(limiter, domain, prefix, 300, 30);

    // One 429 among these sends is within chance at any noise level: noise, nothing shared changes.
    const one = await limiter.record429(domain, sent.at(-1) as number, undefined);
    expect(one.verdict).toBe('noise');
    expect(one.newEpisode).toBe(false);
    expect(await rateOf(limiter, domain)).toBe(50);
    expect((await limiter.state(domain.id)).pausedUntil).toBe(0);

    // Ten more in the same windows: far beyond the noise level. Congestion, one cut for the episode.
    const outcomes = [];
    for (const sentAt of sent.slice(-11, -1))
      outcomes.push(await limiter.record429(domain, sentAt, undefined));
    expect(outcomes.filter((o) => o.verdict === 'congestion')).toHaveLength(1);
    expect(outcomes.filter((o) => o.newEpisode)).toHaveLength(1);
    expect(await rateOf(limiter, domain)).toBeLessThan(50);
    // No wait was stated, so nothing paused the domain.
    expect((await limiter.state(domain.id)).pausedUntil).toBe(0);
  });

  it('a stated wait pauses the domain even when the 429 is judged noise', async () => {
    const prefix = newPrefix();
    const limiter = limiterOn(prefix);
    const domain = domainOf('stated');
    const sent = await sendFor(limiter, domain, prefix, 100);
    const outcome = await limiter.record429(domain, sent.at(-1) as number, 1_500);
    expect(outcome.verdict).toBe('noise');
    expect(outcome.pauseMs).toBeGreaterThan(1_000);
    // What status shows of the pause is counted on Redis's clock, as the pause itself.
    const { pausedForMs } = await limiter.state(domain.id);
    expect(pausedForMs).toBeGreaterThan(outcome.pauseMs - 1_000);
    expect(pausedForMs).toBeLessThanOrEqual(outcome.pauseMs);
    const permit = await limiter.acquire({ domain, ...gateOf(prefix) });
    expect(permit.kind).toBe('admitted');
    expect((permit as { waitedMs: number }).waitedMs).toBeGreaterThan(1_000);
  });

  it('puts a cut under test: a 429 share that does not fall with the rate was noise, so the rate goes back', async () => {
    const prefix = newPrefix();
    const limiter = limiterOn(prefix);
    const domain = domainOf('noisy');
    // Half of all sends answered 429 as they come back, whatever the rate: a busy provider.
    let n = 0;
    const busy = async (ms: number) => {
      const verdicts = [];
      const until = Date.now() + ms;
      while (Date.now() < until) {
        const { sentAt } = admitted(await limiter.acquire({ domain, ...gateOf(prefix) }));
        if (n++ % 2 === 0) verdicts.push(await limiter.record429(domain, sentAt, undefined));
      }
      return verdicts;
    };
    const first = await busy(300);
    expect(first.filter((v) => v.newEpisode)).toHaveLength(1);
    expect(await rateOf(limiter, domain)).toBeLessThan(50);
    // The same share at the lower rate: the test ends with a noise verdict and the old rate.
    await waitFor(
      async () => {
        await busy(100);
        return (await rateOf(limiter, domain)) === 50;
      },
      'the rate to go back to 50',
      10_000,
      0,
    );
    const state = await limiter.state(domain.id);
    expect(state.noiseShare).toBeGreaterThan(0.3);
    expect(state.noiseShare).toBeLessThan(0.7);
  });

  it('keeps a cut whose 429 share fell with the rate (congestion)', async () => {
    const prefix = newPrefix();
    const limiter = limiterOn(prefix);
    const domain = domainOf('congested');
    const sent = await sendFor(limiter, domain, prefix, 300, 30);
    for (const sentAt of sent.filter((_, i) => i % 2 === 0))
      await limiter.record429(domain, sentAt, undefined);
    const cut = await rateOf(limiter, domain);
    expect(cut).toBeLessThan(50);
    // Clean windows at the lower rate, well past the end of the test (about 0.5 s).
    await sendFor(limiter, domain, prefix, 1_500);
    expect(await rateOf(limiter, domain)).toBe(cut);
    expect((await limiter.state(domain.id)).noiseShare).toBeUndefined();
  });

  it('a single episode at a small 429 share, then clean windows: back to the previous rate', async () => {
    const prefix = newPrefix();
    const limiter = limiterOn(prefix);
    const domain = domainOf('blip');
    // A full lookback of sends, then three 429s among the last ten (sends let through between
    // them, so not a wall): a share of a few percent, beyond the noise level.
    const sent = await sendFor(limiter, domain, prefix, 400, 40);
    const outcomes = [];
    for (const sentAt of [sent.at(-9), sent.at(-5), sent.at(-1)] as number[])
      outcomes.push(await limiter.record429(domain, sentAt, undefined));
    expect(outcomes.filter((o) => o.newEpisode)).toHaveLength(1);
    expect(await rateOf(limiter, domain)).toBeLessThan(50);
    await waitFor(
      async () => {
        await sendFor(limiter, domain, prefix, 100);
        return (await rateOf(limiter, domain)) === 50;
      },
      'the rate to recover to 50',
      10_000,
      0,
    );
  });
});
