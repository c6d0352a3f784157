/**
 * The learned rate follows an upstream that changes (README, "What a 429 means"): a noise level is
 * forgotten, a real drop after a noisy spell is cut, a rise is found again, and an operator's
 * limit keeps a running Retry-After pause. Real Redis, the real `DomainLimiter`; the upstream is
 * the simulator's own sliding-window limiter in this process, fed each permit's send time (Redis
 * time, the limiter's clock), so every figure below is in the limiter's own clock.
 */
import {
  DomainLimiter,
  type DomainRef,
  NOISE_HALF_LIFE_WINDOWS,
  type NoiseLevel,
} from '@hfq/shared/internal';
import { SlidingWindowLimiter, tryAcquire } from '@hfq/sim';
import { noiseText } from '@hfq/worker/internal';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { redisForEachTest } from './support/redis.js';
import { waitFor } from './support/wait.js';

const { connect, newPrefix } = redisForEachTest('learn');

function limiterFor(): { limiter: DomainLimiter; prefix: string; redis: Redis } {
  const redis = connect();
  const prefix = newPrefix();
  return { limiter: new DomainLimiter(redis, prefix), prefix, redis };
}

/** An upstream: a sliding-window limit the test moves, and a share of sends refused at random (a busy provider). */
class Upstream {
  readonly window: SlidingWindowLimiter;
  busy = 0;
  sends = 0;
  refused = 0;
  constructor(limit: number, windowMs: number) {
    this.window = new SlidingWindowLimiter(limit, windowMs);
  }
  /** Is a request sent at `sentAt` answered 429? (A busy refusal counts against the limit, as in the simulator.) */
  refuses(sentAt: number): boolean {
    this.sends++;
    const allowed = tryAcquire(this.window, sentAt).allowed;
    const refused = !allowed || Math.random() < this.busy;
    if (refused) this.refused++;
    return refused;
  }
}

/**
 * Eight clients sending as fast as the limiter admits (as a worker's concurrency does), for `forMs`
 * of Redis time or until `until` holds (checked every 25 ms with the newest send time); each
 * refusal goes to `record429` as the worker does. Returns the newest send time.
 */
async function drive(
  limiter: DomainLimiter,
  domain: DomainRef,
  prefix: string,
  upstream: Upstream,
  opts: {
    forMs?: number;
    until?: (sentAt: number) => Promise<boolean>;
    statedMs?: number;
    onAdmit?: (permit: { sentAt: number; primaryLimit: number }) => void;
  },
): Promise<number> {
  let first: number | undefined;
  let last = 0;
  let stop = false;
  const client = async () => {
    while (!stop) {
      const permit = await permitNow(limiter, domain, prefix);
      if (permit.kind !== 'admitted') throw new Error(`permit ${permit.kind}`);
      opts.onAdmit?.(permit);
      last = Math.max(last, permit.sentAt);
      first ??= permit.sentAt;
      if (upstream.refuses(permit.sentAt)) await limiter.record429(domain, permit.sentAt, opts.statedMs);
      if (opts.forMs !== undefined && last - first >= opts.forMs) stop = true;
    }
  };
  const watch = async () => {
    while (!stop) {
      await new Promise((r) => setTimeout(r, 25));
      if (last > 0 && opts.until && (await opts.until(last))) stop = true;
    }
  };
  await Promise.all([...Array.from({ length: 8 }, client), watch()]);
  return last;
}

/**
 * The detector's count fields for bucket `k` (congestion-detector.lua: a ring of 40 buckets, each a
 * quarter of the primary window, 250 ms for the 1-s windows below): its number, sends and 429s.
 */
const DETECTOR_BUCKET_MS = 250;
function bucketFields(k: number, sends: number, refused: number): Record<string, number> {
  const slot = k % 40;
  return { [`b${slot}`]: k, [`s${slot}`]: sends, [`t${slot}`]: refused };
}

/** A send at `at` as a permit records it: in the primary window's log and its detector bucket. */
async function recordSend(
  redis: Redis,
  keys: ReturnType<DomainLimiter['keys']>,
  at: number,
  uid: string,
): Promise<void> {
  const k = Math.floor(at / DETECTOR_BUCKET_MS);
  await redis.zadd(keys.window(0), at, uid);
  await redis.hincrby(keys.state, `s${k % 40}`, 1);
  await redis.hset(keys.state, `b${k % 40}`, k);
}

/**
 * A fresh domain whose state the test writes (a 1-s primary window of `max`), and the Redis time
 * now, the clock the state's fields are in.
 */
async function writtenDomain(id: string, max: number) {
  const { limiter, prefix, redis } = limiterFor();
  const domain: DomainRef = { id, windows: [{ max, durationMs: 1_000 }] };
  const [sec, micro] = await redis.time();
  const now = Number(sec) * 1000 + Math.floor(Number(micro) / 1000);
  return { limiter, prefix, redis, domain, keys: limiter.keys(domain.id), now };
}

/** One permit now, as a worker asks (a written state's due test ends, a raise comes, or neither). */
function permitNow(limiter: DomainLimiter, domain: DomainRef, prefix: string) {
  return limiter.acquire({
    domain,
    gateKey: `${prefix}:gate`,
    ledgerKey: `${prefix}:ledger`,
    appNowMs: Date.now(),
  });
}

/**
 * A cut from `from` to `to` under test, made `bucketsAgo` detector buckets before `now` (on a
 * bucket's edge plus 100 ms, so the settle span ends in the same bucket whatever `now` is), due
 * now; `ckA` and `ckT` the sends and 429s that caused it. The fields as record-429.lua writes them.
 */
function cutUnderTest(
  now: number,
  bucketsAgo: number,
  cut: { from: number; to: number; ckA: number; ckT: number },
) {
  const ckAt = (Math.floor(now / DETECTOR_BUCKET_MS) - bucketsAgo) * DETECTOR_BUCKET_MS + 100;
  const ckK = Math.floor(ckAt / DETECTOR_BUCKET_MS);
  const fields: Record<string, string | number> = {
    rate: String(cut.to),
    ckFrom: String(cut.from),
    ckTo: String(cut.to),
    ckAt,
    ckK,
    ckA: cut.ckA,
    ckT: cut.ckT,
    ckProbe: '0',
    ckUntil: now - 1,
    calmUntil: now - 1,
    lastCutAt: ckAt,
    lastRaiseAt: ckAt,
    rateSince: ckAt,
  };
  return { ckAt, ckK, fields };
}

/**
 * Does a permit raise the rate? A Free account's 5/s estimate learned down to 1/s by a cut
 * `cutAgoMs` ago, with `fields` of the state as the cut left them, and a send half a second ago
 * (the rate was sent at).
 */
async function raisedAtOnePerSecond(
  id: string,
  cutAgoMs: number,
  fields: Record<string, string | number>,
): Promise<boolean> {
  const { limiter, prefix, redis, domain, keys, now } = await writtenDomain(id, 5);
  await redis.hset(keys.state, {
    rate: '1',
    lastCutAt: now - cutAgoMs,
    lastRaiseAt: now - cutAgoMs,
    rateSince: now - cutAgoMs,
    tat: now - 500,
    ovr: '',
    ovrUntil: 0,
    ...fields,
  });
  await redis.zadd(keys.window(0), now - 500, 'sent');
  const permit = await permitNow(limiter, domain, prefix);
  expect(permit.kind).not.toBe('refused');
  return Number(await redis.hget(keys.state, 'rate')) > 1;
}

/**
 * A Free account's cold start at the 5/s estimate, cut to 3/s under test `bucketsAgo` detector
 * buckets ago, due now: one send a bucket in the two windows before the cut (two in the last),
 * three refused, so the window before it let 2 through. After the settle span, `buckets` buckets
 * of `after(i)` = [sends, refused]; `top` a rate that held. The next permit settles the test;
 * returns the state's fields it leaves.
 */
async function settleLowCut(
  id: string,
  opts: { bucketsAgo: number; buckets: number; after: (i: number) => [number, number]; top?: number },
) {
  const { limiter, prefix, redis, domain, keys, now } = await writtenDomain(id, 5);
  const cut = cutUnderTest(now, opts.bucketsAgo, { from: 5, to: 3, ckA: 9, ckT: 3 });
  await redis.hset(keys.state, {
    ...cut.fields,
    ...(opts.top === undefined ? {} : { top: String(opts.top) }),
  });
  for (let i = 0; i < 8; i++)
    await redis.hset(keys.state, bucketFields(cut.ckK - 7 + i, i === 7 ? 2 : 1, i >= 5 ? 1 : 0));
  const fromK = Math.floor((cut.ckAt + 1_015) / DETECTOR_BUCKET_MS) + 1;
  for (let i = 0; i < opts.buckets; i++)
    await redis.hset(keys.state, bucketFields(fromK + i, ...opts.after(i)));
  const permit = await permitNow(limiter, domain, prefix);
  expect(permit.kind).not.toBe('refused');
  const [rate, ckUntil, measuredCut, noiseA] = await redis.hmget(
    keys.state,
    'rate',
    'ckUntil',
    'measuredCut',
    'noiseA',
  );
  return { rate, ckUntil, measuredCut, noiseA };
}

async function rateOf(limiter: DomainLimiter, domain: DomainRef): Promise<number> {
  return (await limiter.state(domain.id)).rate ?? (domain.windows[0] as { max: number }).max;
}

/**
 * Until a noise level is in force, with the rate back at the limit; after `patienceMs` of Redis
 * time, in force alone. (A level stays in force one half-life after its last measure, and the
 * climb back takes windows of sends: on a loaded machine, whose sends thin out, the two may not
 * meet for a long time, and the tests below need only the level.)
 */
function untilNoiseLearned(
  limiter: DomainLimiter,
  domain: DomainRef,
  patienceMs = 20_000,
  seen?: (noise: NoiseLevel) => void,
): (sentAt: number) => Promise<boolean> {
  const limit = (domain.windows[0] as { max: number }).max;
  let startAt: number | undefined;
  return async (sentAt) => {
    startAt ??= sentAt;
    const state = await limiter.state(domain.id);
    if (state.noise?.inForce !== true) return false;
    const learned = (state.rate ?? limit) >= limit || sentAt - startAt > patienceMs;
    // (The level as judged: the clients' sends in flight when the drive stops may still change it.)
    if (learned) seen?.(state.noise);
    return learned;
  };
}

describe('a learner that follows change', () => {
  it('forgets a noise level learned in one phase within its half-life, then judges the same share as congestion', async () => {
    const { limiter, prefix } = limiterFor();
    // 200-ms windows: the half-life is 30 windows, 6 s.
    const domain: DomainRef = { id: 'forget', windows: [{ max: 50, durationMs: 200 }] };
    const upstream = new Upstream(1_000_000, 200);
    upstream.busy = 0.5;
    // A busy provider: half of all sends refused at random, until a test measured the noise (and
    // the rate went back to the limit, where the machine allows).
    let learned: NoiseLevel | undefined;
    await drive(limiter, domain, prefix, upstream, {
      until: untilNoiseLearned(limiter, domain, undefined, (noise) => {
        learned = noise;
      }),
      forMs: 60_000,
    });
    expect(learned?.share).toBeGreaterThan(0.3);
    expect(learned?.share).toBeLessThan(0.7);
    expect(learned?.halfLifeMs).toBe(NOISE_HALF_LIFE_WINDOWS * 200);
    // What `hfq status` and the cockpit show beside the learned rate: share, age, evidence.
    expect(noiseText(learned)).toMatch(/^\d+\.\d%, \d+ s ago \(\d+ sends\)$/);
    // No new evidence: one half-life after its last measure, the level is out of force.
    const halfLifeMs = NOISE_HALF_LIFE_WINDOWS * 200;
    await waitFor(
      async () => ((await limiter.state(domain.id)).noise?.ageMs ?? 0) >= halfLifeMs,
      'one half-life to pass in Redis time',
      3 * halfLifeMs,
      100,
    );
    expect((await limiter.state(domain.id)).noise?.inForce).toBe(false);
    expect(noiseText((await limiter.state(domain.id)).noise)).toMatch(/, forgotten$/);
    expect((await limiter.state(domain.id)).noiseShare).toBeUndefined();
    // The same share is now beyond what the prior explains: the next 429s start an episode (a
    // level still in force, about 0.5, would take a 30% share as noise: no episode).
    upstream.busy = 0.3;
    const episodesBefore = (await limiter.state(domain.id)).episodes;
    let episode = false;
    await drive(limiter, domain, prefix, upstream, {
      until: async () => {
        episode = (await limiter.state(domain.id)).episodes > episodesBefore;
        return episode;
      },
      forMs: 10_000,
    });
    expect(episode).toBe(true);
  }, 180_000);

  it("after a noisy spell, cuts a real drop of the limit to it, at the latest once the spell's noise level is forgotten, with few 429s", async () => {
    const { limiter, prefix } = limiterFor();
    const domain: DomainRef = { id: 'noise-then-drop', windows: [{ max: 50, durationMs: 1_000 }] };
    const upstream = new Upstream(50, 1_000);
    upstream.busy = 0.2;
    // 20% random 429s until the detector holds them as noise, and the rate is back at 50.
    await drive(limiter, domain, prefix, upstream, {
      until: untilNoiseLearned(limiter, domain),
      forMs: 60_000,
    });
    // The provider is steady again and its limit drops to a third.
    upstream.busy = 0;
    upstream.window.limit = 17;
    const sendsBefore = upstream.sends;
    const refusedBefore = upstream.refused;
    let dropAt: number | undefined;
    let cutAt: number | undefined;
    // A bound from the design, whatever path the cuts take: the level learned in the noisy spell
    // is out of force one half-life after its last measure (its evidence capped at twice the
    // minimum), and then the next retest lookback (4 windows) and test (at most 8 windows) cut to
    // the limit. (A test that judged the drop's 429s noise would measure again and push that
    // later; none has here.) Usually much sooner: a first blip's dip and its calm window, then a cut
    // to what got through. Measured here, alone: 0.7–3.9 s in nine runs; in a full suite's run
    // once 9.6 s, and once more than 15 s, when the cuts stopped at 23/s, whose 26% 429s sat
    // within two standard deviations of the 22% level learned (README, "What a 429 means"); the
    // drop's wall now puts the level in question at once.
    const boundMs = (NOISE_HALF_LIFE_WINDOWS + 12) * 1_000;
    await drive(limiter, domain, prefix, upstream, {
      until: async (sentAt) => {
        dropAt ??= sentAt;
        if (cutAt === undefined && (await rateOf(limiter, domain)) <= 17.5) cutAt = sentAt;
        return cutAt !== undefined || sentAt - dropAt > boundMs;
      },
    });
    const stateText = JSON.stringify(await limiter.state(domain.id));
    expect(cutAt, `the rate was never cut to the new limit: ${stateText}`).toBeDefined();
    expect(
      (cutAt as number) - (dropAt as number),
      `cut to the new limit too late: ${stateText}`,
    ).toBeLessThanOrEqual(boundMs);
    // Then it holds there. The upstream's window (1 s) still holds the sends from before the cut
    // and refuses until they leave it: a full suite's run saw 18 of 61 sends refused over the 5 s
    // right after a quick cut, the rate at 17 when they ended. So the window drains first (1.5 s),
    // and then 5 s at the lower limit draw few 429s: a probe back toward the rate that held may come
    // within them and cost a few; a cut undone as noise (back to 50/s against 17) would draw two
    // in three, far above the bound. The benchmark's target (5% while low) is measured over a
    // whole low phase (bench:limits 7).
    await drive(limiter, domain, prefix, upstream, { forMs: 1_500 });
    const sendsDrained = upstream.sends;
    const refusedDrained = upstream.refused;
    await drive(limiter, domain, prefix, upstream, { forMs: 5_000 });
    const after = (upstream.refused - refusedDrained) / (upstream.sends - sendsDrained);
    expect(
      after,
      `429 share after the cut: ${JSON.stringify(await limiter.state(domain.id))}`,
    ).toBeLessThanOrEqual(0.15);
    expect(upstream.refused - refusedBefore).toBeLessThan(0.5 * (upstream.sends - sendsBefore));
  }, 180_000);

  it('a cut under test whose 429 share went up, beyond a noise level learned before, is not undone as noise: the next 429 cuts deeper', async () => {
    const { limiter, prefix, redis } = limiterFor();
    const domain: DomainRef = { id: 'shallow-cut', windows: [{ max: 50, durationMs: 1_000 }] };
    const key = limiter.keys(domain.id).state;
    // The state a limit that fell from 50 to 25/s right after a 10% noisy spell leaves, written
    // as the scripts write it (congestion-detector.lua, 250-ms buckets): a level of 10% in force;
    // a cut from 50 to 35 under test, due now; before the cut 20 of 96 sends refused (the sends
    // before the fall dilute the share), and the window before it let 40 through (the upstream's
    // window still held the old rate); after the settle span, 10 of 35 refused. Noise predicts
    // the share stays (about 21%); congestion, from that window, predicts the level (10%): the
    // likelihoods alone call it noise and give 50/s back. The share went up, 3.4 standard
    // deviations above the learned level: the cut was not deep enough.
    const [sec, micro] = await redis.time();
    const now = Number(sec) * 1000 + Math.floor(Number(micro) / 1000);
    const B = DETECTOR_BUCKET_MS;
    const { ckAt, ckK, fields } = cutUnderTest(now, 10, { from: 50, to: 35, ckA: 96, ckT: 20 });
    Object.assign(fields, { noiseT: '8.000', noiseA: '80.000', noiseAt: now, noiseHl: 30_000 });
    const bucket = (k: number, sends: number, refused: number) =>
      Object.assign(fields, bucketFields(k, sends, refused));
    // Before the cut: 8 buckets, 96 sends, 20 refused (the last 4, the window before it: 48 and 8).
    for (let i = 0; i < 8; i++) bucket(ckK - 7 + i, 12, i < 4 ? 3 : 2);
    // After the settle span (one window and its margin): 5 buckets, 35 sends, 10 refused.
    const fromK = Math.floor((ckAt + 1_015) / B) + 1;
    const toK = Math.floor(now / B) - 1;
    for (let k = fromK; k <= toK; k++) bucket(k, 7, 2);
    await redis.hset(key, fields);

    // The next permit ends the test.
    const permit = await permitNow(limiter, domain, prefix);
    expect(permit.kind).not.toBe('refused');
    const [rate, chainFrom, ckUntil, noiseA] = await redis.hmget(
      key,
      'rate',
      'chainFrom',
      'ckUntil',
      'noiseA',
    );
    expect(Number(rate)).toBe(35);
    // Ended as congestion: the chain keeps where it started, for the next 429's cut.
    expect(ckUntil).toBeNull();
    expect(chainFrom).toBe('50');
    // The level that did not explain these 429s is put in question (below the minimum of evidence).
    expect(Number(noiseA)).toBeLessThan(40);
  });

  it('returns to the ceiling within ten windows of a limit that lifts (the longest probe wait plus the climb)', async () => {
    const { limiter, prefix } = limiterFor();
    // 500-ms windows (50/s): the statement is in windows of the limiter's own clock.
    const windowMs = 500;
    const domain: DomainRef = { id: 'drop-rise', windows: [{ max: 25, durationMs: windowMs }] };
    const upstream = new Upstream(25, windowMs);
    // At the limit for twelve windows (the rate holds: five windows without a cut), then 40% of
    // it for 24 windows.
    await drive(limiter, domain, prefix, upstream, { forMs: 12 * windowMs });
    upstream.window.limit = 10;
    // The drop is followed: in the second half of the low spell the rate is at the lower limit
    // but for probes (a probe in flight may be what one reading sees, so the median of them).
    const rates: number[] = [];
    let lowFrom: number | undefined;
    await drive(limiter, domain, prefix, upstream, {
      forMs: 24 * windowMs,
      until: async (sentAt) => {
        lowFrom ??= sentAt;
        if (sentAt - lowFrom >= 12 * windowMs) rates.push(await rateOf(limiter, domain));
        return false;
      },
    });
    rates.sort((a, b) => a - b);
    expect(rates.length).toBeGreaterThan(10);
    expect(rates[Math.floor(rates.length / 2)]).toBeLessThanOrEqual(11);
    // The limit lifts: measure, in Redis time, until the learned rate is back at 25.
    upstream.window.limit = 25;
    let liftAt: number | undefined;
    let backAt: number | undefined;
    await drive(limiter, domain, prefix, upstream, {
      until: async (sentAt) => {
        liftAt ??= sentAt;
        if ((await rateOf(limiter, domain)) >= 25) backAt = sentAt;
        return backAt !== undefined || sentAt - liftAt > 40 * windowMs;
      },
    });
    expect(backAt, 'the rate never came back to the ceiling').toBeDefined();
    expect((backAt as number) - (liftAt as number)).toBeLessThanOrEqual(10 * windowMs);
  }, 180_000);

  it('past the rate that held, each raise that held doubles the next; a climb that reaches the rate that held starts over with one step', async () => {
    const { limiter, prefix, redis, domain, keys, now } = await writtenDomain('doubling', 50);
    // Sent at the rate in force for the last window (a raise waits for that), 20 s after the last cut.
    const sentFor = async (rate: number) => {
      await redis.del(keys.window(0));
      for (let i = 0; i < rate; i++)
        await redis.zadd(keys.window(0), now - 900 + i * 10, `send-${rate}-${i}`);
    };
    const permit = () => permitNow(limiter, domain, prefix);
    const state = (fields: Record<string, string | number>) =>
      redis.hset(keys.state, {
        lastCutAt: now - 20_000,
        lastRaiseAt: now - 1_500,
        rateSince: now - 1_500,
        ovr: '',
        ovrUntil: 0,
        ...fields,
      });

    // Past the rate that held (34): the last raise (2) held, so the next is 4, not one step (1).
    await state({ rate: '36', top: '34', raiseStep: '2' });
    await sentFor(36);
    await permit();
    expect(Number(await redis.hget(keys.state, 'rate'))).toBe(40);
    expect(await redis.hget(keys.state, 'raiseStep')).toBe('4');

    // Back toward the rate that held (34) from 30 with a step of 4: it reaches 34, and the climb
    // past it starts over with one step (a hidden limit may sit just above the rate that held).
    await redis.del(keys.state);
    await state({ rate: '30', top: '34', raiseStep: '4' });
    await sentFor(30);
    await permit();
    expect(Number(await redis.hget(keys.state, 'rate'))).toBe(34);
    expect(await redis.hget(keys.state, 'raiseStep')).toBe('0');
  });

  it('a probe answered with a stated wait is cut to what got through, never below where its climb started: 2/s over a 1/s limit is cut to 1, not 1.4', async () => {
    // A Free account's 5/s estimate; the upstream's hidden limit is 1/s and states its waits.
    const { limiter, redis, domain, keys, now } = await writtenDomain('low-probe', 5);
    // The rate held at 1/s; a raise to 2/s half a second ago (a probe: its climb started at 1).
    await redis.hset(keys.state, {
      rate: '2',
      probeFrom: '1',
      lastCutAt: now - 20_000,
      lastRaiseAt: now - 500,
      rateSince: now - 500,
      top: '1',
      ovr: '',
      ovrUntil: 0,
    });
    // In the window: one send the upstream let through, then the probe's send it refused; each
    // counted in its detector bucket (a quarter window, ring of 40) as a permit counts it.
    await redis.zadd(keys.window(0), now - 700, 'let-through', now - 100, 'refused');
    for (const at of [now - 700, now - 100])
      await redis.hset(keys.state, bucketFields(Math.floor(at / DETECTOR_BUCKET_MS), 1, 0));
    const outcome = await limiter.record429(domain, now - 100, 1_000);
    expect(outcome.verdict).toBe('congestion');
    expect(outcome.pauseMs).toBeGreaterThan(500);
    // Back to 1/s: beta of the probe (1.4/s) is still over the limit, and drew a second 429 and
    // a second pause per probe (bench:limits 11b, nine 429s in 100 jobs, two per probe).
    expect(outcome.rate).toBe(1);
    expect(Number(await redis.hget(keys.state, 'rate'))).toBe(1);
  });

  it('after a probe answered with a stated wait, the next waits at least 50 sends at the rate in force, doubled: at 1/s, 100 s', async () => {
    // The low-probe case above, after its cut: one stated miss in a row.
    const raisedAfter = (cutAgoMs: number) =>
      raisedAtOnePerSecond('low-backoff', cutAgoMs, { probeFrom: '1', probeMiss: 1 });
    // 30 s after the cut: the ten-second quiet time doubled (20 s) would probe again, a 429 and a
    // pause every 20 sends (bench:limits 11b: probes at 14, 34 and 75 s, 6 of 106 answered 429).
    expect(await raisedAfter(30_000)).toBe(false);
    // 101 s after it, the probe comes.
    expect(await raisedAfter(101_000)).toBe(true);
  });

  it('a probe past every rate that held, refused twice with no headers, is cut back to where its climb started and counts a miss; a probe back toward a rate that held counts none', async () => {
    // A Free account's 5/s estimate over a hidden 3/s with no headers (the router documents none),
    // as bench:limits 11c meets it: the rate held at 3/s, then a climb to `rate`, and in the last
    // second five sends, the last two refused (the second and third of the climb's window).
    const probe = async (id: string, rate: number, top?: number) => {
      const { limiter, redis, domain, keys, now } = await writtenDomain(id, 5);
      await redis.hset(keys.state, {
        rate: String(rate),
        probeFrom: '3',
        lastCutAt: now - 20_000,
        lastRaiseAt: now - 900,
        rateSince: now - 900,
        ovr: '',
        ovrUntil: 0,
        ...(top === undefined ? {} : { top: String(top) }),
      });
      // Two of the sends in one detector bucket, so the busiest quarter window says 8/s and the
      // cut starts from the rate itself.
      const last = now - 100;
      const lastBucketStart = Math.floor(last / DETECTOR_BUCKET_MS) * DETECTOR_BUCKET_MS;
      const sends = [now - 900, now - 700, now - 500, lastBucketStart, last];
      for (const [i, at] of sends.entries()) await recordSend(redis, keys, at, `send-${i}`);
      await limiter.record429(domain, lastBucketStart, undefined);
      const second = await limiter.record429(domain, last, undefined);
      return { second, state: await redis.hgetall(keys.state) };
    };
    const past = await probe('unstated-probe', 5);
    // Two 429s in five sends: a climb's, so congestion (the old rule waited for a third, as it
    // does when no climb is on: a rate that held drew none).
    expect(past.second.verdict).toBe('congestion');
    // Back to 3/s, where the climb started: beta of the probe (3.5/s) is still over the limit, and
    // drew a second episode and a tested cut per probe (11c: 34 of 274 requests answered 429).
    expect(past.second.rate).toBe(3);
    // A miss: the next probe waits at least 50 sends at the rate in force (then doubled per miss).
    expect(past.state.probeMiss).toBe('1');
    // A probe back toward a rate that held (5/s held before a drop): no miss, probes back to it
    // stay on their schedule.
    const back = await probe('unstated-return', 4, 5);
    expect(back.second.verdict).toBe('congestion');
    expect(back.second.rate).toBe(3);
    expect(back.state.probeMiss).toBeUndefined();
  });

  it('at a few requests a second a missed probe counts on until a raise held ten sends', async () => {
    // A Free account's 5/s estimate over a hidden 3/s with no headers, one probe missed: a climb
    // from 3 to 4/s `raisedAgoMs` ago, four sends in the last second (the rate was sent at).
    const climbOn = async (id: string, raisedAgoMs: number) => {
      const { limiter, prefix, redis, domain, keys, now } = await writtenDomain(id, 5);
      await redis.hset(keys.state, {
        rate: '4',
        probeFrom: '3',
        probeMiss: 1,
        raiseStep: 1,
        lastCutAt: now - 40_000,
        lastRaiseAt: now - raisedAgoMs,
        rateSince: now - raisedAgoMs,
        ovr: '',
        ovrUntil: 0,
      });
      for (const [i, at] of [now - 900, now - 650, now - 400, now - 150].entries())
        await recordSend(redis, keys, at, `send-${i}`);
      const permit = await permitNow(limiter, domain, prefix);
      expect(permit.kind).not.toBe('refused');
      return redis.hmget(keys.state, 'rate', 'probeMiss');
    };
    // 4/s for 1.5 s (six sends) may pass a window under 3/s: the next step comes, the miss stays
    // counted (the old rule started it over, and the step to 5/s then missed as a first miss: 11c
    // probed every 33 s instead of doubling).
    expect(await climbOn('held-six', 1_500)).toEqual(['5', '1']);
    // For 3 s (twelve sends) it held: the count starts over.
    expect(await climbOn('held-twelve', 3_000)).toEqual(['5', '0']);
  });

  it('at a few requests a second a test that confirms congestion below a ceiling that never held makes the first probe wait 50 sends', async () => {
    // 3.5 s after the cut, 12 sends at 3/s and none refused: the share fell with the rate,
    // congestion.
    const confirm = (id: string, top?: number) =>
      settleLowCut(id, { bucketsAgo: 14, top, after: (i) => [i < 3 ? 2 : 1, 0], buckets: 9 });
    // The test ends with the cut kept, and it measured the limit: the first probe waits 50 sends
    // (17 s at 3/s), as after a stated wait's cut (below), not ten seconds (11c: a probe 10 s after
    // the cold start's cut cost two 429s).
    expect(await confirm('confirmed-low')).toMatchObject({ rate: '3', ckUntil: null, measuredCut: '1' });
    // Below a rate that held (5/s held before the limit fell), probes back keep their schedule.
    expect(await confirm('confirmed-below-top', 5)).toMatchObject({
      rate: '3',
      ckUntil: null,
      measuredCut: null,
    });
  });

  it('at a few requests a second a test does not read buckets with no send as a pause', async () => {
    // 5.5 s after the cut, 13 sends at 3/s, one refused (a send at the limit's edge). One bucket
    // in four had no send: those are no pause, so congestion predicts a third refused, as noise
    // does, and the test goes on. (The old rule took the empty buckets for a pause, counted 4
    // sends a window, predicted half refused, read the one 429 as noise, and went back to 5/s:
    // every 7 s a cut and a test, 30 429s in one 11c run.)
    const state = await settleLowCut('low-one-refused', {
      bucketsAgo: 22,
      after: (i) => [i % 4 === 0 ? 0 : 1, i === 5 ? 1 : 0],
      buckets: 17,
    });
    expect(state.rate).toBe('3');
    expect(state.ckUntil).not.toBeNull();
    expect(state.noiseA).toBeNull();
  });

  it('stated waits cut to what got through, below 40% of the rate, and the first probe past that waits 50 sends; a span that let nothing through cuts to 40%', async () => {
    // A Free account's 5/s estimate over a hidden 1/s that states its waits, as a cold start
    // meets it: a send refused (its wait paused the domain), the pause over, one send let
    // through, the next refused. `letThrough` false: both refused, nothing measured.
    const startCut = async (id: string, letThrough: boolean, max = 5) => {
      const { limiter, redis, domain, keys, now } = await writtenDomain(id, max);
      const [refusedAt, letThroughAt, lastAt] = [now - 1_000, now - 300, now - 100];
      // Each send in the window's log and counted in its detector bucket, as a permit does.
      for (const [at, uid] of [
        [refusedAt, 'a'],
        [letThroughAt, 'b'],
        [lastAt, 'c'],
      ] as const) {
        await recordSend(redis, keys, at, uid);
      }
      const first = await limiter.record429(domain, refusedAt, 1_000);
      expect(first.pauseMs).toBeGreaterThan(0);
      if (!letThrough) await limiter.record429(domain, letThroughAt, 1_000);
      const second = await limiter.record429(domain, lastAt, 1_000);
      return { second, rate: Number(await redis.hget(keys.state, 'rate')), redis, keys };
    };
    const measured = await startCut('stated-measured', true);
    expect(measured.second.verdict).toBe('congestion');
    // To the one send let through (the old floor, 40% of 5/s, left 2/s: a third 429 and pause).
    expect(measured.rate).toBe(1);
    expect(await measured.redis.hget(measured.keys.state, 'measuredCut')).toBe('1');
    // Nothing let through measures no limit: 40% of the rate, and no longer wait for a probe.
    const wall = await startCut('stated-wall', false);
    expect(wall.rate).toBe(2);
    expect(await wall.redis.hget(wall.keys.state, 'measuredCut')).toBe('0');
    // A cut that stops above what got through measured nothing either: at a 50/s estimate the
    // same sends are cut to 90% of the busiest quarter window's rate (4 or 8/s, as the three sends
    // fall in the buckets), not to the one that got through.
    const above = await startCut('stated-above', true, 50);
    expect(above.rate).toBeGreaterThan(1);
    expect(await above.redis.hget(above.keys.state, 'measuredCut')).toBe('0');

    // The first probe after such a cut.
    const raisedAfter = (cutAgoMs: number, measuredCut: number) =>
      raisedAtOnePerSecond('stated-probe', cutAgoMs, { measuredCut });
    // 30 s after a measured cut, no probe (the ten-second quiet time probed ten sends after it:
    // bench:limits 11b paid a 429 and a pause for it, and another 100 s later, four in 100 jobs).
    expect(await raisedAfter(30_000, 1)).toBe(false);
    expect(await raisedAfter(51_000, 1)).toBe(true);
    // After any other cut the quiet time is the usual ten seconds.
    expect(await raisedAfter(30_000, 0)).toBe(true);
  });

  it("a climb's 429s are compared with the share before it: a share that rose with the climb is the edge, whatever level a busy spell left in force", async () => {
    // A limit that fell to 17/s after a spell of 20% noise: the rate held at 17 with no 429s, a
    // probe raised it to 20/s, and the spell's level (19%) is still in force. The probe's sends
    // draw the share (15–40%) a window's edge gives, which the level alone calls noise.
    const probeAfter = async (refusedBeforeRaise: number) => {
      const { limiter, redis, domain, keys, now } = await writtenDomain('probe-edge', 50);
      const raiseAt = now - 300;
      await redis.hset(keys.state, {
        rate: '20',
        probeFrom: '17',
        probeAt: raiseAt,
        lastCutAt: now - 20_000,
        lastRaiseAt: raiseAt,
        rateSince: raiseAt,
        noiseT: '15.2',
        noiseA: '80',
        noiseAt: now,
        noiseHl: 30_000,
      });
      const kRaise = Math.floor(raiseAt / DETECTOR_BUCKET_MS);
      const kNow = Math.floor((now - 50) / DETECTOR_BUCKET_MS);
      // Two windows at 17/s before the raise (8 buckets of 5 sends), then the probe's sends: 3 of
      // the raise's bucket refused, and the throttled send below in the newest bucket.
      for (let i = 0; i < 8; i++)
        await redis.hset(keys.state, bucketFields(kRaise - 8 + i, 5, i < refusedBeforeRaise ? 1 : 0));
      await redis.hset(keys.state, bucketFields(kRaise, 5, 3));
      if (kNow > kRaise) await redis.hset(keys.state, bucketFields(kNow, 5, 0));
      const outcome = await limiter.record429(domain, now - 50, undefined);
      return { outcome, rate: Number(await redis.hget(keys.state, 'rate')) };
    };
    // No 429 in the 40 sends before the raise: the share rose with the raise (4 of 10, a Fisher
    // test gives 0.09%), so the probe found the edge and goes back to where its climb started.
    // (Judged against the level alone, 4 of 10 is noise: the rate stayed at 20/s with 15% 429s
    // for as long as the level stayed in force.)
    const edge = await probeAfter(0);
    expect(edge.outcome.verdict).toBe('congestion');
    expect(edge.rate).toBe(17);
    // 8 of 40 before the raise, the level's own share: the noise did not go, so the same 429s
    // after the raise stay noise (18%) and the rate stays.
    const noise = await probeAfter(8);
    expect(noise.outcome.verdict).toBe('noise');
    expect(noise.rate).toBe(20);
  });

  it('a noise level the last four windows contradict (far fewer 429s than it predicts) is put out of force: the next 429 is judged against the prior', async () => {
    // A spell's level of 19% is in force; the rate has held at 20/s for a while.
    const judge = async (refusedBefore: number, buckets = 16) => {
      const { limiter, redis, domain, keys, now } = await writtenDomain('noise-gone', 50);
      await redis.hset(keys.state, {
        rate: '20',
        lastCutAt: now - 60_000,
        lastRaiseAt: now - 60_000,
        rateSince: now - 60_000,
        noiseT: '15.2',
        noiseA: '80',
        noiseAt: now,
        noiseHl: 30_000,
      });
      // Four windows of sends (16 buckets of 5), `refusedBefore` of them refused, one per bucket
      // of the newest; the throttled send below is in the newest bucket.
      const kNow = Math.floor((now - 50) / DETECTOR_BUCKET_MS);
      for (let i = 16 - buckets; i < 16; i++)
        await redis.hset(keys.state, bucketFields(kNow - 15 + i, 5, i >= 16 - refusedBefore ? 1 : 0));
      const outcome = await limiter.record429(domain, now - 50, undefined);
      return { outcome, state: await limiter.state(domain.id) };
    };
    // 2 of 80 against the 15 the level predicts (three standard deviations are 10.5): the spell
    // is over, and 2 429s in the last two windows' 40 sends are congestion under the prior.
    const gone = await judge(1);
    expect(gone.outcome.noiseLevel).toBeCloseTo(0.002, 6);
    expect(gone.outcome.noiseEvidenceSends).toBe(0);
    expect(gone.outcome.verdict).toBe('congestion');
    expect(gone.state.noise?.inForce).toBe(false);
    // 9 of 80 (11%): within chance of the level, which stays in force and calls the 429 noise.
    const kept = await judge(8);
    expect(kept.outcome.noiseLevel).toBeCloseTo(0.19, 3);
    expect(kept.outcome.verdict).toBe('noise');
    expect(kept.state.noise?.inForce).toBe(true);
    expect(kept.state.rate).toBe(20);
    // A 429 whose send's bucket has left the ring (it came back late) is no count at all: no
    // sends is no evidence that the noise went, and the level stays.
    const late = await judge(0, 0);
    expect(late.outcome.noiseLevel).toBeCloseTo(0.19, 3);
    expect(late.state.noise?.inForce).toBe(true);
  });

  it('a cut under test whose two predictions are about the same small share ends at once: the cut is undone, not held for eight windows', async () => {
    // A 2% noise taken for congestion at 40/s: a cut to 37/s under test, 3.5 s old, due now. The
    // window before the cut let 37 through, and the rate sends 38/s: congestion predicts about the
    // share noise does. `refusedBefore` of the window's 40 sends were refused.
    const settle = async (refusedBefore: number, refusedAfter: number, sendsAfter = 86) => {
      const { limiter, prefix, redis, domain, keys, now } = await writtenDomain('undecidable', 50);
      const cut = cutUnderTest(now, 14, { from: 40, to: 37, ckA: 80, ckT: refusedBefore });
      const { ckAt, ckK } = cut;
      await redis.hset(keys.state, cut.fields);
      // Before the cut: two windows of 10 sends a bucket, the refused ones in the second.
      for (let i = 0; i < 8; i++) {
        const refused = i < 4 ? 0 : Math.floor(refusedBefore / 4) + (i - 4 < refusedBefore % 4 ? 1 : 0);
        await redis.hset(keys.state, bucketFields(ckK - 7 + i, 10, refused));
      }
      // After the settle span (one window and its margin): 9 buckets of 9 or 10 sends (86: 38/s).
      const fromK = Math.floor((ckAt + 1_015) / DETECTOR_BUCKET_MS) + 1;
      for (let k = fromK; k < fromK + 9; k++)
        await redis.hset(
          keys.state,
          bucketFields(k, k - fromK < sendsAfter - 81 ? 10 : 9, k - fromK < refusedAfter ? 1 : 0),
        );
      // The next permit ends the test, or gives it another window.
      const permit = await permitNow(limiter, domain, prefix);
      expect(permit.kind).not.toBe('refused');
      const [rate, ckUntil, noiseA] = await redis.hmget(keys.state, 'rate', 'ckUntil', 'noiseA');
      return { rate: Number(rate), testing: ckUntil !== null, noiseA: Number(noiseA ?? 0) };
    };
    // 3 of 80 before (3.8%), 3 of 86 after: noise predicts 3.2 429s, congestion (37 let through
    // of 38 a window) 2.7. Over the 300 sends the longest test would hold, the two differ by a
    // log-likelihood ratio of about 0.13 on average, where a verdict needs 1.5: the test ends now
    // as undecided, the rate goes back to 40 and the counts become noise evidence. (The old rule
    // held 37/s, and every raise, for five more windows before the same end.)
    const same = await settle(3, 3);
    expect(same.testing).toBe(false);
    expect(same.rate).toBe(40);
    expect(same.noiseA).toBeGreaterThanOrEqual(40);
    // 3 of 80 before, 5 of 90 after (40/s): congestion predicts 7.5% (37 of 40 let through) where
    // noise predicts 3.8%; neither explains the 5 much better yet (ratio -0.1), and the longest
    // test can tell them apart (about 4.5 on average): another window.
    const apart = await settle(3, 5, 90);
    expect(apart.testing).toBe(true);
    expect(apart.rate).toBe(37);
  });

  it('an operator limit during a Retry-After pause keeps the pause and says what it cleared', async () => {
    const { limiter, prefix } = limiterFor();
    const domain: DomainRef = { id: 'paused', windows: [{ max: 20, durationMs: 1_000 }] };
    const upstream = new Upstream(20, 1_000);
    const sentAt = await drive(limiter, domain, prefix, upstream, { forMs: 100 });
    const outcome = await limiter.record429(domain, sentAt, 3_000);
    expect(outcome.pauseMs).toBeGreaterThan(2_000);
    const { pausedUntil } = await limiter.state(domain.id);

    const done = await limiter.setOverride(domain.id, { limit: 10 });
    expect(done.keptPausedUntil).toBe(pausedUntil);
    expect(done.cleared).toContain('learned rate');
    const state = await limiter.state(domain.id);
    expect(state.pausedUntil).toBe(pausedUntil);
    expect(state.override).toBe(10);
    // The next permit still waits for the upstream's stated time.
    const permit = await limiter.acquire({
      domain,
      gateKey: `${prefix}:gate`,
      ledgerKey: `${prefix}:ledger`,
      appNowMs: Date.now(),
      maxWaitMs: 0,
    });
    expect(permit.kind).toBe('wait');
    expect((permit as { waitMs: number }).waitMs).toBeGreaterThan(1_500);
    // Clearing the override keeps it too.
    expect((await limiter.setOverride(domain.id, { limit: undefined })).keptPausedUntil).toBe(pausedUntil);
  });

  it('a fractional rate is whole sends over a longer window: 2.5/s is 3 per 1,200 ms, never 3 in a shorter span', async () => {
    const { limiter, prefix } = limiterFor();
    const domain: DomainRef = { id: 'fraction', windows: [{ max: 5, durationMs: 1_000 }] };
    // A rate of 2.5 in force (an operator's limit; a learned rate is paced the same way).
    await limiter.setOverride(domain.id, { limit: 2.5 });
    const sent: number[] = [];
    const limits = new Set<number>();
    await drive(limiter, domain, prefix, new Upstream(1_000_000, 1_000), {
      until: async () => sent.length >= 10,
      onAdmit: (permit) => {
        sent.push(permit.sentAt);
        limits.add(permit.primaryLimit);
      },
    });
    // Rounded down, 2.5/s would be 2 sends a second: a fifth of the rate lost (a third at 2.9/s).
    expect([...limits]).toEqual([3]);
    sent.sort((a, b) => a - b);
    // Never more than 3 in any 1,200 ms (so never over 2.5/s in the long run), nor in any 1,000 ms.
    for (let i = 3; i < sent.length; i++) {
      expect((sent[i] as number) - (sent[i - 3] as number)).toBeGreaterThanOrEqual(1_200);
    }
  }, 60_000);
});
