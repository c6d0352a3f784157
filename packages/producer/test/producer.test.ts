import { ValidationError } from '@hfq/shared';
import { PRIORITY_LIMIT } from 'bullmq';
import type { Redis } from 'ioredis';
import { beforeEach, describe, expect, it } from 'vitest';
import { keysUnder } from '../../../test/support/redis.js';
import { type Stack, startStack } from '../../../test/support/stack.js';

const job = {
  account: 'acme',
  task: 'feature-extraction',
  model: 'sentence-transformers/all-MiniLM-L6-v2',
  inputs: 'hello',
} as const;

let stack: Stack;
let admin: Redis;

beforeEach(async () => {
  stack = await startStack({ label: 'p', sim: false });
  admin = stack.redis();
});

describe('producer', () => {
  it('rejects an invalid job before anything reaches Redis, naming the field', async () => {
    await expect(stack.producer.enqueue({ ...job, inputs: 42 })).rejects.toThrow(/inputs/);
    await expect(stack.producer.enqueue({ ...job, account: '' })).rejects.toBeInstanceOf(ValidationError);
    expect(await keysUnder(admin, stack.prefix)).toEqual([]);
  });

  it('validates a whole enqueueMany before adding any of it', async () => {
    const error = await stack.producer
      .enqueueMany([job, { ...job, model: 'bad model id' } as never])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues[0]?.path).toBe('1.model');
    expect(await keysUnder(admin, stack.prefix)).toEqual([]);
  });

  it('makes enqueue idempotent with a jobId', async () => {
    const first = await stack.producer.enqueue(job, { jobId: 'order-17' });
    const second = await stack.producer.enqueue({ ...job, inputs: 'different' }, { jobId: 'order-17' });
    expect(second.id).toBe(first.id);
    const queue = stack.producer.queue('acme');
    expect(await queue.count()).toBe(1);
    const stored = await queue.getJob('order-17');
    expect(stored?.data).toEqual({ v: 1, job });
  });

  it('adds one bulk per account queue and keeps input order in the handles', async () => {
    const handles = await stack.producer.enqueueMany([
      job,
      { ...job, account: 'other' },
      { ...job, inputs: 'third' },
    ]);
    expect(handles.map((h) => h.account)).toEqual(['acme', 'other', 'acme']);
    expect(await stack.producer.queue('acme').count()).toBe(2);
    expect(await stack.producer.queue('other').count()).toBe(1);
  });

  it('rejects a bad jobId and bad options, naming them', async () => {
    await expect(stack.producer.enqueue(job, { jobId: '12345' })).rejects.toThrow(/jobId/);
    await expect(stack.producer.enqueue(job, { jobId: 'a:b' })).rejects.toThrow(/jobId/);
    await expect(stack.producer.enqueue(job, { delayMs: -1 })).rejects.toThrow(/delayMs/);
  });

  it('refuses a priority BullMQ would refuse, before any account of an enqueueMany is added', async () => {
    const other = { ...job, account: 'other' };
    const error = await stack.producer
      .enqueueMany([{ job: other }, { job, options: { priority: PRIORITY_LIMIT + 1 } }])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues[0]?.path).toBe('1.priority');
    expect(await keysUnder(admin, stack.prefix)).toEqual([]);
  });
});
