/** An endpoint's backlog index against a real Redis: pruning, the demand mark, published endpoints. */
import {
  appendToBacklogs,
  endpointFor,
  endpointKeys,
  markEndpointDemand,
  publishEndpoints,
  readEndpointBacklog,
  readPublishedEndpoints,
} from '@hfq/shared/internal';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { testPrefix, testRedis } from '../../../test/support/redis.js';

const connect = testRedis;

/** Index `jobKeys` for endpoint `ep` of account `acme`. */
async function index(redis: Redis, prefix: string, jobKeys: string[]): Promise<void> {
  const multi = redis.multi();
  appendToBacklogs(multi, prefix, 'acme', new Map([['ep', jobKeys]]));
  await multi.exec();
}

describe('endpoint backlog', () => {
  it('drops finished and removed jobs, keeps waiting ones, and is empty once they finish', async () => {
    const redis = connect();
    const prefix = testPrefix();
    const job = (id: number) => `${prefix}:account-{acme}:${id}`;
    // As BullMQ keeps them: `timestamp` from the add, `finishedOn` once completed or failed for good.
    await redis.hset(job(1), 'timestamp', 1, 'finishedOn', 2);
    await redis.hset(job(3), 'timestamp', 3);
    await redis.hset(job(4), 'timestamp', 4, 'finishedOn', 5);
    await index(redis, prefix, [job(1), job(2), job(3), job(4)]);

    expect(await readEndpointBacklog(redis, prefix, 'acme', 'ep')).toEqual({
      waiting: true,
      jobs: 1,
      demand: false,
    });
    const { backlog } = endpointKeys(prefix, 'acme', 'ep');
    expect(await redis.lrange(backlog, 0, -1)).toEqual([job(3)]);
    expect(await redis.pttl(backlog)).toBeGreaterThan(0);

    await redis.hset(job(3), 'finishedOn', 6);
    expect(await readEndpointBacklog(redis, prefix, 'acme', 'ep')).toEqual({
      waiting: false,
      jobs: 0,
      demand: false,
    });
  });

  it('counts entries it had no time to look at as waiting, and looks at them on the next read', async () => {
    const redis = connect();
    const prefix = testPrefix();
    // 6,000 removed jobs: more than one script call looks at.
    await index(
      redis,
      prefix,
      Array.from({ length: 6_000 }, (_, i) => `${prefix}:account-{acme}:${i}`),
    );
    expect(await readEndpointBacklog(redis, prefix, 'acme', 'ep', 1)).toEqual({
      waiting: true,
      jobs: 1_000,
      demand: false,
    });
    expect(await readEndpointBacklog(redis, prefix, 'acme', 'ep', 1)).toEqual({
      waiting: false,
      jobs: 0,
      demand: false,
    });
  });

  it('a demand mark counts as backlog until it lapses', async () => {
    const redis = connect();
    const prefix = testPrefix();
    await markEndpointDemand(redis, prefix, 'acme', 'ep', 60_000);
    expect(await readEndpointBacklog(redis, prefix, 'acme', 'ep')).toEqual({
      waiting: true,
      jobs: 0,
      demand: true,
    });
    expect(await redis.pttl(endpointKeys(prefix, 'acme', 'ep').demand)).toBeGreaterThan(0);
  });

  it('publishes what each endpoint serves (no URL), and a job goes to the first that serves it', async () => {
    const redis = connect();
    const prefix = testPrefix();
    // As the worker passes them: whole endpoint configs, URL included.
    const configs = [
      { name: 'chat', url: 'https://chat.example', models: ['m/a'], task: 'chat-completion', concurrency: 2 },
      { name: 'emb', url: 'https://emb.example', models: ['m/a', 'm/b'], concurrency: 8, hourlyUsd: 1.2 },
    ];
    await publishEndpoints(redis, prefix, 'acme', configs);
    const published = await readPublishedEndpoints(redis, prefix, 'acme');
    expect(published).toEqual([
      { name: 'chat', models: ['m/a'], task: 'chat-completion', concurrency: 2 },
      { name: 'emb', models: ['m/a', 'm/b'], concurrency: 8, hourlyUsd: 1.2 },
    ]);
    expect(endpointFor(published, { model: 'm/a', task: 'chat-completion' })?.name).toBe('chat');
    expect(endpointFor(published, { model: 'm/a', task: 'feature-extraction' })?.name).toBe('emb');
    expect(endpointFor(published, { model: 'm/c', task: 'feature-extraction' })).toBeUndefined();
    // An account whose endpoints were removed from the config: none published any more.
    await publishEndpoints(redis, prefix, 'acme', []);
    expect(await readPublishedEndpoints(redis, prefix, 'acme')).toEqual([]);
  });
});
