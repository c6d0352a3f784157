/**
 * The `deadline` and `preference` enqueue options: validated before Redis, naming the field, and
 * carried in the job's data (`dueAt`, `preference`) for the batch route's planner. A job without
 * them is written as before.
 */
import { createProducer } from '@hfq/producer';
import { createLogger, type Job, ValidationError } from '@hfq/shared';
import { accountQueueName, JOB_DATA } from '@hfq/shared/internal';
import { describe, expect, test } from 'vitest';
import { prepareJob } from '../packages/producer/src/producer.js';
import { adminRedis, keysUnder, redisUrl, testPrefix } from './support/redis.js';
import { startStack } from './support/stack.js';

const NOW = Date.parse('2026-12-06T12:00:00Z');
const HOUR = 3_600_000;
const job: Job = {
  account: 'acme',
  task: 'chat-completion',
  model: 'm/m',
  messages: [{ role: 'user', content: 'hi' }],
};

const refusal = (options: Parameters<typeof prepareJob>[1]) => {
  try {
    prepareJob(job, options, NOW);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).issues;
  }
  throw new Error('accepted');
};

describe('prepareJob', () => {
  test('a duration, an ISO time with a zone, or a Date; the preference defaults to cost', () => {
    expect(prepareJob(job, { deadline: '6h' }, NOW).data).toMatchObject({
      dueAt: NOW + 6 * HOUR,
      preference: 'cost',
    });
    expect(prepareJob(job, { deadline: '1h30m' }, NOW).data.dueAt).toBe(NOW + 1.5 * HOUR);
    expect(prepareJob(job, { deadline: '1.5d' }, NOW).data.dueAt).toBe(NOW + 36 * HOUR);
    expect(prepareJob(job, { deadline: '2026-12-06T18:00:00+02:00' }, NOW).data.dueAt).toBe(NOW + 4 * HOUR);
    const date = new Date(NOW + 2 * HOUR);
    expect(prepareJob(job, { deadline: date, preference: 'speed' }, NOW).data).toMatchObject({
      dueAt: NOW + 2 * HOUR,
      preference: 'speed',
    });
    const plain = prepareJob(job, {}, NOW).data;
    expect(plain).toEqual({ v: 1, job });
    expect(JOB_DATA.parse(prepareJob(job, { deadline: '6h' }, NOW).data).dueAt).toBe(NOW + 6 * HOUR);
  });

  test('what is not a deadline is refused naming the field', () => {
    expect(refusal({ deadline: 'tomorrow' })).toEqual([
      { path: 'deadline', message: expect.stringMatching(/ISO 8601/) },
    ]);
    expect(refusal({ deadline: '2026-12-06T18:00:00' })[0]?.path).toBe('deadline'); // no zone
    expect(refusal({ deadline: '2026-12-06T11:00:00Z' })).toEqual([
      { path: 'deadline', message: 'a time in the future' },
    ]);
    expect(refusal({ deadline: '0m' })).toEqual([
      { path: 'deadline', message: 'a duration longer than zero' },
    ]);
    expect(refusal({ deadline: new Date(Number.NaN) })[0]?.path).toBe('deadline');
    expect(refusal({ deadline: '20y' })[0]?.path).toBe('deadline');
    expect(refusal({ preference: 'cost' })).toEqual([
      { path: 'preference', message: expect.stringMatching(/only with a deadline/) },
    ]);
    expect(refusal({ deadline: '6h', preference: 'cheap' as never })).toEqual([
      { path: 'preference', message: '"cost" or "speed"' },
    ]);
  });
});

describe('enqueue', () => {
  test('a batch carries its deadline into every child; a bad one is refused before Redis', async () => {
    const prefix = testPrefix();
    const admin = adminRedis();
    const producer = createProducer({ connection: redisUrl(), prefix });
    try {
      const spec = {
        account: 'acme',
        task: 'text-classification' as const,
        model: 'm/m',
        items: ['a', 'b', 'c'],
      };
      await expect(producer.enqueueBatch(spec, { deadline: 'soon' })).rejects.toThrow(
        /invalid batch: deadline:/,
      );
      await expect(producer.enqueueBatch(spec, { preference: 'speed' })).rejects.toThrow(
        /invalid batch: preference:/,
      );
      expect(await keysUnder(admin, prefix)).toEqual([]);
      const dueAt = Date.now() + 3 * HOUR;
      const batch = await producer.enqueueBatch(spec, { deadline: new Date(dueAt), preference: 'speed' });
      await batch.enqueued();
      for (let i = 0; i < 3; i++) {
        const stored = await admin.hget(`${prefix}:${accountQueueName('acme')}:${batch.id}-${i}`, 'data');
        expect(JOB_DATA.parse(JSON.parse(stored ?? 'null'))).toMatchObject({ dueAt, preference: 'speed' });
      }
    } finally {
      await producer.close();
      await admin.quit();
    }
  });

  test('the deadline reaches Redis in the job data; a bad one leaves nothing there', async () => {
    const prefix = testPrefix();
    const admin = adminRedis();
    const producer = createProducer({ connection: redisUrl(), prefix });
    try {
      await expect(producer.enqueue(job, { deadline: 'next week' })).rejects.toThrow(
        /invalid enqueue options: deadline: an ISO 8601 time/,
      );
      expect(await keysUnder(admin, prefix)).toEqual([]);
      const before = Date.now();
      const handle = await producer.enqueue(job, { deadline: '2h', preference: 'cost' });
      const stored = await admin.hget(`${prefix}:${accountQueueName('acme')}:${handle.id}`, 'data');
      const data = JOB_DATA.parse(JSON.parse(stored ?? 'null'));
      expect(data.preference).toBe('cost');
      expect(data.dueAt).toBeGreaterThanOrEqual(before + 2 * HOUR);
      expect(data.dueAt).toBeLessThanOrEqual(Date.now() + 2 * HOUR);
    } finally {
      await producer.close();
      await admin.quit();
    }
  });
});

describe('split halves', () => {
  test("a child refused as too large splits into halves that keep the batch's deadline", async () => {
    const token = 'hf_test_deadline_split_0123456789';
    const stack = await startStack({
      label: 'due',
      sim: { maxItemsPerRequest: 4, tooLargeStatus: 413 },
      tokens: { [token]: { label: 'due' } },
      accounts: [{ id: 'acme', tier: 'pro', hfToken: token, limit: { max: 100, durationMs: 1000 } }],
    });
    {
      await stack.startWorker({
        concurrency: 2,
        logger: createLogger({ name: 'due-test', level: 'silent' }),
      });
      const inputs = Array.from({ length: 10 }, (_, i) => `text ${i}`);
      const before = Date.now();
      const batch = await stack.newProducer().enqueueBatch(
        {
          account: 'acme',
          task: 'feature-extraction',
          model: 'sentence-transformers/all-MiniLM-L6-v2',
          items: inputs,
          coalesce: 10,
        },
        { deadline: '2h' },
      );
      const after = Date.now();
      const results = await batch.results({ timeoutMs: 30_000, remove: false });
      expect(results.every((result) => result.ok)).toBe(true);
      const admin = adminRedis();
      try {
        const halves = (await keysUnder(admin, stack.prefix)).filter((key) =>
          key.startsWith(`${stack.prefix}:${accountQueueName('acme')}:${batch.id}-0.`),
        );
        const split = halves.filter((key) => /-0\.\d+$/.test(key));
        expect(split.length).toBeGreaterThanOrEqual(2);
        for (const key of split) {
          const half = JOB_DATA.parse(JSON.parse((await admin.hget(key, 'data')) ?? 'null'));
          expect(half.batch?.count).toBeLessThan(10);
          expect(half.preference).toBe('cost');
          expect(half.dueAt).toBeGreaterThanOrEqual(before + 2 * HOUR);
          expect(half.dueAt).toBeLessThanOrEqual(after + 2 * HOUR);
        }
      } finally {
        await admin.quit();
      }
    }
  });
});
