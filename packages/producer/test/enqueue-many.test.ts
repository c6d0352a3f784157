import { EnqueueManyError } from '@hfq/producer';
import { accountQueueName } from '@hfq/shared/internal';
import type { Redis } from 'ioredis';
import { beforeEach, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../../../test/support/stack.js';

/**
 * `enqueueMany` across accounts: each account's jobs are added in one transaction, and when one
 * account's add fails the error says which accounts' jobs are in, so a retry with the same ids is safe.
 */

const job = (account: string, i: number) => ({
  job: {
    account,
    task: 'feature-extraction' as const,
    model: 'sentence-transformers/all-MiniLM-L6-v2',
    inputs: `text ${i}`,
  },
  options: { jobId: `${account}-${i}` },
});

let stack: Stack;
let admin: Redis;

beforeEach(async () => {
  stack = await startStack({ label: 'pmany', sim: false });
  admin = stack.redis();
});

const waiting = (account: string) => admin.llen(`${stack.prefix}:${accountQueueName(account)}:wait`);

describe('enqueueMany across accounts', () => {
  it('says per account which jobs were added when one account fails, and a retry adds only the rest', async () => {
    // The beta queue's metadata is unusable (a string where BullMQ keeps a hash): its adds fail.
    await admin.set(`${stack.prefix}:${accountQueueName('beta')}:meta`, 'not a hash');
    const jobs = [job('alpha', 0), job('beta', 0), job('alpha', 1), job('beta', 1), job('alpha', 2)];
    const failure = await stack.producer.enqueueMany(jobs).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(EnqueueManyError);
    const accounts = (failure as EnqueueManyError).accounts;
    expect(accounts.map((a) => [a.account, a.added, a.indexes])).toEqual([
      ['alpha', true, [0, 2, 4]],
      ['beta', false, [1, 3]],
    ]);
    expect((failure as Error).message).toMatch(
      /alpha: added \(3 job\(s\)\).*beta: not added \(2 job\(s\): .*WRONGTYPE/,
    );
    expect(await waiting('alpha')).toBe(3);
    expect(await admin.exists(`${stack.prefix}:${accountQueueName('beta')}:beta-0`)).toBe(0);

    // Fixed and retried with the same ids: beta's jobs are added, alpha's are not added twice.
    await admin.del(`${stack.prefix}:${accountQueueName('beta')}:meta`);
    const handles = await stack.producer.enqueueMany(jobs);
    expect(handles.map((h) => h.id)).toEqual(['alpha-0', 'beta-0', 'alpha-1', 'beta-1', 'alpha-2']);
    expect(await waiting('alpha')).toBe(3);
    expect(await waiting('beta')).toBe(2);
  });
});
