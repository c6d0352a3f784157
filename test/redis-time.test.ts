/**
 * Time is Redis time (see docs/architecture.md, 'Redis time'): a deadline that a script compares
 * with Redis TIME is passed as a duration and made a time by the script, so a worker whose clock
 * is off by an hour marks an endpoint unavailable for the stated time, not for its skew. Real
 * Redis, a real worker with an injected clock, the simulator's endpoint over HTTP.
 */
import type { AccountConfigInput } from '@hfq/shared';
import { EndpointStatusStore, endpointKeys } from '@hfq/shared/internal';
import { beforeEach, describe, expect, it } from 'vitest';
import { type Stack, startStack, upstreamOf } from './support/stack.js';

const HF = 'hf_redistimeowner';
const MODEL = 'BAAI/bge-small-en-v1.5';
const HOUR_MS = 3_600_000;
/** What the endpoint route states for a paused (400 "Invalid state") endpoint. */
const PAUSED_FOR_MS = 10_000;

let stack: Stack;

beforeEach(async () => {
  stack = await startStack({
    label: 'rt',
    sim: { latency: { baseMs: 0, jitterMs: 0, minMs: 2, maxMs: 5, perItemMs: 0 } },
  });
});

function account(management?: { namespace: string; name: string }): AccountConfigInput {
  return {
    id: 'acme',
    tier: 'pro',
    hfToken: HF,
    limit: { max: 50, durationMs: 1000 },
    routing: management ? 'endpoint-only' : 'endpoint-first',
    endpoints: [
      {
        name: 'emb',
        url: stack.sim.endpointUrl('emb'),
        models: [MODEL],
        concurrency: 4,
        ...(management ? { management } : {}),
      },
    ],
  };
}

function worker(accounts: AccountConfigInput[], skewMs: number, checkMs = 100) {
  return stack.startWorker({
    accounts,
    upstream: { ...upstreamOf(stack.sim), endpointsApiUrl: stack.sim.endpointsApiUrl },
    concurrency: 4,
    endpoints: { checkMs },
    now: () => Date.now() + skewMs,
  });
}

/** The endpoint's status mark as the slot script reads it, and Redis's clock, in one round trip. */
async function readMark(): Promise<{
  state: string | null;
  untilMs: number;
  sinceMs: number;
  redisNowMs: number;
}> {
  const redis = stack.redis();
  const { status } = endpointKeys(stack.prefix, 'acme', 'emb');
  const replies = await redis.multi().hmget(status, 'state', 'until', 'since').time().exec();
  if (!replies) throw new Error('MULTI aborted');
  const [[, fields], [, time]] = replies as [[unknown, (string | null)[]], [unknown, [string, string]]];
  const [state, until, since] = fields;
  const [seconds, micros] = time;
  return {
    state: state ?? null,
    untilMs: Number(until ?? 0),
    sinceMs: Number(since ?? 0),
    redisNowMs: Number(seconds) * 1000 + Math.floor(Number(micros) / 1000),
  };
}

describe('a worker with a skewed clock', () => {
  it.each([
    ['an hour ahead', HOUR_MS],
    ['an hour behind', -HOUR_MS],
  ])(
    'marks a paused endpoint unavailable for the stated 10 s, on Redis time (clock %s)',
    async (_, skewMs) => {
      stack.sim.setEndpoint('emb', { model: MODEL, initialState: 'paused' });
      await worker([account()], skewMs);
      const p = stack.newProducer();
      const before = await readMark();
      expect(before.state).toBeNull();
      // endpoint-first: the endpoint answers 400 "Invalid state", is marked paused, the job goes
      // through the router.
      const result = await (
        await p.enqueue({ account: 'acme', task: 'feature-extraction', model: MODEL, inputs: 'skewed' })
      ).result({ timeoutMs: 20_000 });
      expect(result.route).toBe('hf-router');
      const mark = await readMark();
      expect(mark.state).toBe('paused');
      // Written within this test, by Redis's clock: not an hour off either way.
      expect(mark.sinceMs).toBeGreaterThanOrEqual(before.redisNowMs);
      expect(mark.sinceMs).toBeLessThanOrEqual(mark.redisNowMs);
      expect(mark.untilMs - mark.sinceMs).toBe(PAUSED_FOR_MS);
      const leftMs = mark.untilMs - mark.redisNowMs;
      expect(leftMs).toBeGreaterThan(0);
      expect(leftMs).toBeLessThanOrEqual(PAUSED_FOR_MS);
    },
  );

  it("shares the management API's paused state for three checks, on Redis time (clock an hour ahead)", async () => {
    stack.sim.setEndpoint('emb', { model: MODEL, initialState: 'paused' });
    const checkMs = 200;
    await worker([account({ namespace: 'sim', name: 'emb' })], HOUR_MS, checkMs);
    const redis = stack.redis();
    const { lifecycle } = endpointKeys(stack.prefix, 'acme', 'emb');
    await expect.poll(async () => (await readMark()).state, { timeout: 10_000 }).toBe('paused');
    const mark = await readMark();
    expect(mark.untilMs - mark.sinceMs).toBe(3 * checkMs);
    expect(mark.untilMs - mark.redisNowMs).toBeLessThanOrEqual(3 * checkMs);
    // The lifecycle's own times (checked by every worker in turn) are Redis's clock too.
    const lastAt = Number(await redis.hget(lifecycle, 'lastAt'));
    expect(Math.abs(lastAt - mark.redisNowMs)).toBeLessThan(HOUR_MS / 2);
  });
});

describe('EndpointStatusStore.markUnavailable', () => {
  it('takes a duration and returns the end on Redis time; 0 marks until cleared', async () => {
    const redis = stack.redis();
    const store = new EndpointStatusStore(redis, stack.prefix);
    const untilMs = await store.markUnavailable('acme', 'emb', 'failed', 'refused (401)', 2_500);
    const mark = await readMark();
    expect(mark).toMatchObject({ state: 'failed', untilMs });
    expect(untilMs - mark.sinceMs).toBe(2_500);
    expect(untilMs - mark.redisNowMs).toBeLessThanOrEqual(2_500);
    expect(untilMs - mark.redisNowMs).toBeGreaterThan(0);
    expect(await store.markUnavailable('acme', 'emb', 'paused', 'paused', 0)).toBe(0);
    expect(await store.read('acme', 'emb')).toMatchObject({ state: 'paused', untilMs: 0 });
    const { status } = endpointKeys(stack.prefix, 'acme', 'emb');
    expect(await redis.pttl(status)).toBeGreaterThan(0);
  });
});
