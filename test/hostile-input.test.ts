import { createProducer } from '@hfq/producer';
import { JOB, ValidationError } from '@hfq/shared';
import { accountQueueName, parseOrThrow } from '@hfq/shared/internal';
import { Queue } from 'bullmq';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { redisUrl, testPrefix } from './support/redis.js';
import { startStack } from './support/stack.js';

const TOKEN = 'hf_test_hostile_0123456789abcdef';
const good = {
  account: 'acme',
  task: 'text-classification',
  model: 'distilbert/distilbert-base-uncased-finetuned-sst-2-english',
  inputs: 'fine',
};

describe('jobs written by a foreign producer with plain BullMQ', () => {
  let queue: Queue;

  beforeEach(async () => {
    const stack = await startStack({
      label: 'hos',
      tokens: { [TOKEN]: { label: 'acme' } },
      accounts: [{ id: 'acme', tier: 'pro', hfToken: TOKEN }],
      workers: 1,
    });
    queue = new Queue(accountQueueName('acme'), {
      connection: { url: stack.redisUrl } as never,
      prefix: stack.prefix,
    });
    stack.defer(() => queue.close());
  });

  it('fails each bad job as unrecoverable with its reason; good jobs beside them complete', async () => {
    const bad: Record<string, unknown> = {
      'wrong shape': { hello: 'world' },
      'unknown task': { v: 1, job: { ...good, task: 'mind-reading' } },
      'future schema': { v: 2, job: good },
      'old schema': { v: 0, job: good },
      'proto keys': JSON.parse(`{"v":1,"job":${JSON.stringify(good)},"__proto__":{"polluted":true}}`),
      'huge string': { v: 1, job: { ...good, inputs: 'x'.repeat(10 * 1024 * 1024) } },
      'other account': { v: 1, job: { ...good, account: 'someone-else' } },
    };
    const added = await queue.addBulk([
      ...Object.entries(bad).map(([name, data]) => ({ name, data, opts: { attempts: 5 } })),
      { name: 'good', data: { v: 1, job: good }, opts: { attempts: 5 } },
    ]);
    const ids = added.map((j) => j.id as string);
    await expect
      .poll(async () => (await queue.getJobCounts('completed', 'failed')) as Record<string, number>, {
        timeout: 20_000,
      })
      .toEqual({ completed: 1, failed: Object.keys(bad).length });
    for (const id of ids.slice(0, -1)) {
      const job = await queue.getJob(id);
      expect(job?.attemptsMade, `${job?.name} retried`).toBe(1);
      expect(job?.failedReason, job?.name).toMatch(/invalid job data|job is for account/);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('properties', () => {
  it('the job schema never throws anything but a ValidationError', () => {
    fc.assert(
      fc.property(fc.anything({ withObjectString: true, withNullPrototype: true }), (value) => {
        try {
          parseOrThrow(JOB, value, 'job');
        } catch (err) {
          return err instanceof ValidationError;
        }
        return true;
      }),
      { numRuns: 2000 },
    );
  });

  it('the producer rejects the same hostile inputs before Redis', async () => {
    const producer = createProducer({ connection: redisUrl(), prefix: testPrefix('hosp') });
    try {
      await expect(producer.enqueue({ ...good, task: 'mind-reading' })).rejects.toBeInstanceOf(
        ValidationError,
      );
      await expect(
        producer.enqueue({ ...good, inputs: 'x'.repeat(10 * 1024 * 1024) }),
      ).rejects.toBeInstanceOf(ValidationError);
    } finally {
      await producer.close();
    }
  });
});
