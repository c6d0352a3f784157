/** The endpoint semaphore's scripts against a real Redis: capacity, leases, learning, the waker. */
import { EndpointSemaphore, EndpointStatusStore, type SemaphoreOptions } from '@hfq/shared/internal';
import { describe, expect, it } from 'vitest';
import { keysUnder, testPrefix, testRedis } from '../../../test/support/redis.js';
import { waitFor } from '../../../test/support/wait.js';

const connect = testRedis;

/** A semaphore on an endpoint known to be up (else one waking request at a time). */
async function semaphoreOn(prefix: string, options: SemaphoreOptions = {}) {
  const redis = connect();
  await new EndpointStatusStore(redis, prefix).markOk('acme', 'ep', Date.now());
  return new EndpointSemaphore(redis, prefix, options);
}

const ref = { accountId: 'acme', name: 'ep', concurrency: 4 };

describe('EndpointSemaphore', () => {
  it('never admits more than N in flight across clients, and a release frees a slot', async () => {
    const prefix = testPrefix();
    const clients = [await semaphoreOn(prefix), await semaphoreOn(prefix)];
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (clients[i % 2] as EndpointSemaphore).tryAcquire(ref)),
    );
    const admitted = results.filter((r) => r.kind === 'admitted');
    expect(admitted).toHaveLength(4);
    expect(results.filter((r) => r.kind === 'full')).toHaveLength(6);
    const first = admitted[0];
    if (first?.kind !== 'admitted') throw new Error('unreachable');
    expect(await clients[0]?.release(ref, first.lease)).toBe(true);
    expect((await clients[1]?.tryAcquire(ref))?.kind).toBe('admitted');
    expect((await clients[1]?.tryAcquire(ref))?.kind).toBe('full');
  });

  it("gives a dead holder's slots back when its lease lapses, and renewing keeps a live one", async () => {
    const prefix = testPrefix();
    const semaphore = await semaphoreOn(prefix, { leaseMs: 300 });
    const one = { ...ref, concurrency: 2 };
    const kept = await semaphore.tryAcquire(one);
    const lost = await semaphore.tryAcquire(one);
    expect(kept.kind).toBe('admitted');
    expect(lost.kind).toBe('admitted');
    expect((await semaphore.tryAcquire(one)).kind).toBe('full');
    const renewing = setInterval(() => {
      if (kept.kind === 'admitted') void semaphore.renew(one, kept.lease);
    }, 100);
    try {
      await waitFor(async () => (await semaphore.tryAcquire(one)).kind === 'admitted', 'the lapsed lease');
      expect((await semaphore.tryAcquire(one)).kind).toBe('full');
      expect((await semaphore.state(one)).inFlight).toBe(2);
    } finally {
      clearInterval(renewing);
    }
    if (lost.kind === 'admitted') expect(await semaphore.release(one, lost.lease)).toBe(false);
  });

  it('lowers the learned limit once per 429 episode, and recovers one slot per quiet interval', async () => {
    const prefix = testPrefix();
    const semaphore = await semaphoreOn(prefix, { recoverMs: 400 });
    const wide = { ...ref, concurrency: 8 };
    const burst = await Promise.all(Array.from({ length: 8 }, () => semaphore.tryAcquire(wide)));
    const cuts = [];
    for (const slot of burst.slice(4)) {
      if (slot.kind !== 'admitted') throw new Error('expected admission');
      cuts.push(await semaphore.recordThrottle(wide, slot.admittedAt));
    }
    // Four 429s to requests admitted together: one episode, one cut (8 in flight → 7).
    expect(cuts.map((c) => c.newEpisode)).toEqual([true, false, false, false]);
    expect(await semaphore.state(wide)).toMatchObject({ limit: 7, episodes: 1 });
    for (const slot of burst) if (slot.kind === 'admitted') await semaphore.release(wide, slot.lease);

    // A 429 to a request admitted after the cut is a new episode (the clock has millisecond steps).
    await new Promise((r) => setTimeout(r, 2));
    const later = await semaphore.tryAcquire(wide);
    if (later.kind !== 'admitted') throw new Error('expected admission');
    const second = await semaphore.recordThrottle(wide, later.admittedAt);
    expect(second).toMatchObject({ newEpisode: true, limit: 1, episodes: 2 });
    await semaphore.release(wide, later.lease);
    await waitFor(async () => {
      await semaphore.tryAcquire({ ...wide, concurrency: 8 }).then((r) => {
        if (r.kind === 'admitted') return semaphore.release(wide, r.lease);
      });
      return (await semaphore.state(wide)).limit >= 3;
    }, 'the limit to recover');
  });

  it('admits one waking request at a time while the endpoint is cold or unknown, and nothing while paused', async () => {
    const prefix = testPrefix();
    const redis = connect();
    const semaphore = new EndpointSemaphore(redis, prefix, { leaseMs: 500 });
    const status = new EndpointStatusStore(redis, prefix);
    // Nothing known yet: the first request probes alone.
    const unknown = await Promise.all(Array.from({ length: 3 }, () => semaphore.tryAcquire(ref)));
    expect(unknown.filter((r) => r.kind === 'admitted' && r.waker)).toHaveLength(1);
    for (const r of unknown) if (r.kind === 'admitted') await semaphore.release(ref, r.lease);
    await redis.del(semaphore.keys(ref).waker);

    await status.markCold('acme', 'ep', 'scaling up', Date.now());
    const results = await Promise.all(Array.from({ length: 4 }, () => semaphore.tryAcquire(ref)));
    expect(results.filter((r) => r.kind === 'admitted' && r.waker)).toHaveLength(1);
    expect(results.filter((r) => r.kind === 'waking')).toHaveLength(3);
    // The waker's role lapses with its lease, so a dead waker does not strand the endpoint.
    await waitFor(async () => (await semaphore.tryAcquire(ref)).kind === 'admitted', 'a new waker');
    await status.markOk('acme', 'ep', Date.now());
    const free = await semaphore.tryAcquire(ref);
    expect(free).toMatchObject({ kind: 'admitted', waker: false });

    await status.markUnavailable('acme', 'ep', 'paused', 'Bad Request: Invalid state', 0);
    expect(await semaphore.tryAcquire(ref)).toMatchObject({ kind: 'unavailable', state: 'paused' });
    expect((await status.read('acme', 'ep')).reason).toContain('Invalid state');
  });

  it('gives every key it writes a TTL', async () => {
    const prefix = testPrefix();
    const redis = connect();
    const semaphore = new EndpointSemaphore(redis, prefix);
    const slot = await semaphore.tryAcquire(ref);
    if (slot.kind !== 'admitted') throw new Error('expected admission');
    await semaphore.renew(ref, slot.lease);
    await semaphore.recordThrottle(ref, slot.admittedAt);
    await semaphore.release(ref, slot.lease);
    await new EndpointStatusStore(redis, prefix).markCold('acme', 'ep', 'cold', Date.now());
    // The first admission took the waker role (nothing was known), which still stands.
    expect((await semaphore.tryAcquire(ref)).kind).toBe('waking');
    const keys = await keysUnder(redis, prefix);
    const { limit, status, waker } = semaphore.keys(ref);
    expect(keys).toEqual(expect.arrayContaining([limit, status, waker]));
    for (const key of keys) expect(await redis.pttl(key), key).toBeGreaterThan(0);
  });
});
