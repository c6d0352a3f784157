import type { LimiterOptions, Logger } from '@hfq/shared';
import { DomainLimiter, type DomainRef } from '@hfq/shared/internal';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { handle429 } from '../packages/worker/src/handle-429.js';
import { rateChangeLogger } from '../packages/worker/src/rate-change-log.js';
import { chatFor, perJobModels } from './support/faults.js';
import { captureLogs, LEVEL } from './support/log-capture.js';
import { keysUnder, redisUrl, testPrefix } from './support/redis.js';
import { startStack } from './support/stack.js';
import { waitFor } from './support/wait.js';

/**
 * Limit changes in the worker's log: one line per change of a domain's learned rate, with the
 * rate before and after and why; "learned rate lowered" only when the rate went down (a noise
 * verdict is a debug line at most); an operator's override set or cleared is one line for the
 * whole fleet. The real limiter scripts on Redis, the worker's own 429 handling and log lines.
 */

const connections: Redis[] = [];
const prefixes: string[] = [];
afterEach(async () => {
  const [admin] = connections;
  if (admin) for (const prefix of prefixes.splice(0)) await removeKeysUnder(admin, prefix);
  await Promise.all(connections.splice(0).map((c) => c.quit()));
});

async function removeKeysUnder(admin: Redis, prefix: string): Promise<void> {
  const keys = await keysUnder(admin, prefix);
  if (keys.length > 0) await admin.unlink(...keys);
}

/** A limiter whose rate changes are logged as the worker logs them, for account `acme`. */
function loggedLimiter(logger: Logger, prefix = testPrefix('limlog'), options: LimiterOptions = {}) {
  prefixes.push(prefix);
  const redis = new Redis(redisUrl());
  connections.push(redis);
  const limiter = new DomainLimiter(redis, prefix, {
    ...options,
    onRateChange: rateChangeLogger(logger, () => ['acme']),
  });
  return { limiter, prefix };
}

const gateOf = (prefix: string) => ({
  gateKey: `${prefix}:gate`,
  ledgerKey: `${prefix}:ledger`,
  appNowMs: Date.now(),
});

async function send(limiter: DomainLimiter, domain: DomainRef, prefix: string, ms: number, least = 0) {
  const sent: number[] = [];
  const until = Date.now() + ms;
  while (Date.now() < until || sent.length < least) {
    const permit = await limiter.acquire({ domain, ...gateOf(prefix) });
    if (permit.kind !== 'admitted') throw new Error(`permit ${permit.kind}`);
    sent.push(permit.sentAt);
  }
  return sent;
}

/** A 429 with no stated wait, through the worker's own handling (handle-429.ts). */
function throttle(limiter: DomainLimiter, domain: DomainRef, sentAt: number, logger: Logger) {
  return handle429({
    limiter,
    domain,
    sentAt,
    response: undefined,
    body: '',
    nowMs: Date.now(),
    random: () => 0.5,
    logger,
    account: 'acme',
    route: 'hf-router',
  });
}

const lowered = /^learned rate lowered/;

describe('limit changes in the log', () => {
  // A primary window of 200 ms: the detector's buckets are 50 ms, its lookback 400 ms.
  const domainOf = (id: string, max = 50): DomainRef => ({ id, windows: [{ max, durationMs: 200 }] });

  it('a noise verdict logs at debug only; congestion logs "learned rate lowered" once, old → new', async () => {
    const logs = captureLogs('debug');
    const { limiter, prefix } = loggedLimiter(logs.logger);
    const domain = domainOf('steady');
    const sent = await send(limiter, domain, prefix, 300, 30);

    const first = await throttle(limiter, domain, sent.at(-1) as number, logs.logger);
    expect(first.newEpisode).toBe(false);
    expect(logs.matching(lowered)).toEqual([]);
    expect(logs.lines.every((l) => l.level <= LEVEL.debug)).toBe(true);
    expect(logs.matching(/^upstream 429: noise/)).toHaveLength(1);

    for (const sentAt of sent.slice(-11, -1)) await throttle(limiter, domain, sentAt, logs.logger);
    const rate = (await limiter.state(domain.id)).rate as number;
    expect(rate).toBeLessThan(50);
    const cuts = logs.matching(lowered);
    expect(cuts).toHaveLength(1);
    expect(cuts[0]).toMatchObject({
      level: LEVEL.warn,
      account: 'acme',
      domain: 'steady',
      reason: 'cut',
      fromRate: 50,
    });
    expect(cuts[0]?.toRate).toBeCloseTo(rate, 2);
    expect(cuts[0]?.msg).toMatch(/^learned rate lowered: 50 → [\d.]+ \(congestion/);
    expect(logs.matching(/^upstream 429: congestion episode$/)).toHaveLength(1);
  });

  it('a congestion verdict that leaves the rate where it was says nothing about lowering it', async () => {
    const logs = captureLogs('debug');
    const { limiter, prefix } = loggedLimiter(logs.logger);
    // One request a window: a cut cannot go below it.
    const domain = domainOf('floor', 1);
    const sent = await send(limiter, domain, prefix, 0, 2);
    const outcomes = [];
    for (let i = 0; i < 4; i++)
      outcomes.push(await throttle(limiter, domain, sent.at(-1) as number, logs.logger));
    expect(outcomes.some((o) => o.newEpisode)).toBe(true);
    expect(await limiter.state(domain.id)).toMatchObject({ rate: 1 });
    expect(logs.matching(/^upstream 429: congestion episode$/)).toHaveLength(1);
    expect(logs.matching(lowered)).toEqual([]);
  });

  it('a cut given back logs the rate coming back, old → new, at info', async () => {
    const logs = captureLogs('info');
    // A short quiet time and big steps: whichever way the cut is given back (a blip's recovery,
    // a noise verdict, or the climb after the quiet time), it is back within seconds.
    const { limiter, prefix } = loggedLimiter(logs.logger, undefined, { quietMs: 300, increaseRatio: 0.25 });
    const domain = domainOf('blip');
    const sent = await send(limiter, domain, prefix, 400, 40);
    for (const sentAt of sent.slice(-3)) await throttle(limiter, domain, sentAt, logs.logger);
    const cut = logs.matching(lowered);
    expect(cut).toHaveLength(1);
    const back = /^learned rate (restored|raised back)/;
    await waitFor(
      async () => {
        await send(limiter, domain, prefix, 100);
        return logs.matching(back).length > 0;
      },
      'the rate to come back',
      10_000,
      0,
    );
    const [line] = logs.matching(back);
    expect(line, logs.text()).toMatchObject({ level: LEVEL.info, toRate: 50 });
    expect(['recover', 'noise', 'undecided', 'raise', 'return']).toContain(line?.reason);
    expect(line?.fromRate as number).toBeGreaterThanOrEqual(cut[0]?.toRate as number);
    expect(line?.msg).toMatch(/^learned rate (restored|raised back): [\d.]+ → 50 \(/);
    // Every line in between is the rate going up, never a cut.
    expect(logs.matching(lowered)).toHaveLength(1);
  });

  it('a cut under test found to be noise logs "learned rate restored" with the reason and its evidence', async () => {
    const logs = captureLogs('info');
    const { limiter, prefix } = loggedLimiter(logs.logger);
    const domain = domainOf('noisy');
    // Half of all sends answered 429 as they come back, whatever the rate: a busy provider.
    let n = 0;
    const busy = async (ms: number) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        const permit = await limiter.acquire({ domain, ...gateOf(prefix) });
        if (permit.kind !== 'admitted') throw new Error(`permit ${permit.kind}`);
        if (n++ % 2 === 0) await throttle(limiter, domain, permit.sentAt, logs.logger);
      }
    };
    await busy(300);
    expect(logs.matching(lowered)).toHaveLength(1);
    await waitFor(
      async () => {
        await busy(100);
        return logs.matching(/^learned rate restored/).length > 0;
      },
      'the noise verdict',
      10_000,
      0,
    );
    const [restored] = logs.matching(/^learned rate restored/);
    expect(restored, logs.text()).toMatchObject({ level: LEVEL.info, reason: 'noise', toRate: 50 });
    // The line says what the noise level now rests on: the share, the 429s and the sends.
    expect(restored?.msg).toMatch(
      /^learned rate restored: [\d.]+ → 50 \(the cut's 429s were noise; noise level [\d.]+% from \d+ 429s in \d+ sends\)$/,
    );
    expect(restored?.noiseSends).toBeGreaterThan(0);
    expect(restored?.noise429s).toBeGreaterThan(0);
    expect(restored?.noiseLevel).toBeGreaterThan(0.3);
    expect(restored?.noiseLevel).toBeLessThan(0.7);
  });

  it('an override set and cleared: one line each for every process taking permits', async () => {
    const logs = captureLogs('info');
    const { limiter, prefix } = loggedLimiter(logs.logger);
    const other = loggedLimiter(logs.logger, prefix).limiter;
    const domain = domainOf('overridden');
    await send(limiter, domain, prefix, 0, 3);
    await limiter.setOverride(domain.id, { limit: 20 });
    await send(limiter, domain, prefix, 0, 2);
    await send(other, domain, prefix, 0, 2);
    await limiter.setOverride(domain.id, { limit: undefined });
    await send(other, domain, prefix, 0, 2);
    await send(limiter, domain, prefix, 0, 2);
    expect(logs.lines.map((l) => l.msg)).toEqual([
      'operator override set (hfq limit): rate 50 → 20',
      'operator override cleared (hfq limit): rate 20 → 50 (the configured limit)',
    ]);
  });

  it('the worker logs an operator override with the account, once', { timeout: 60_000 }, async () => {
    const logs = captureLogs('info');
    const account = { id: 'acme', tier: 'pro' as const, hfToken: 'hf_limit_log_0123456789abcdef' };
    const stack = await startStack({
      label: 'limlogw',
      sim: { latency: { baseMs: 0, jitterMs: 0 } },
      accounts: [account],
    });
    // Its keys go once everything it started is closed, as the other tests' keys go after them.
    const redis = stack.redis();
    stack.defer(() => removeKeysUnder(redis, stack.prefix));
    await stack.startWorker({ logger: logs.logger, cockpitFlushMs: 60_000 });
    const admin = stack.admin;
    const producer = stack.producer;
    const { sim } = stack;
    await admin.setLimit('acme', 7);
    const [model] = perJobModels(sim, 'limlog', 1) as [string];
    await (await producer.enqueue(chatFor('acme', model))).result({ timeoutMs: 30_000 });
    const lines = logs.matching(/^operator override set/);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: LEVEL.info, account: 'acme', reason: 'override', toRate: 7 });
  });
});
