import { JobFailedError } from '@hfq/producer';
import type { Job } from '@hfq/shared';
import { beforeEach, describe, expect, it } from 'vitest';
import { type Stack, startStack } from './support/stack.js';

const TOKEN = 'hf_test_errors_0123456789abcdef';
const classify = (text: string): Job => ({
  account: 'acme',
  task: 'text-classification',
  model: 'distilbert/distilbert-base-uncased-finetuned-sst-2-english',
  inputs: text,
});

describe('upstream errors by class', () => {
  let stack: Stack;

  beforeEach(async () => {
    stack = await startStack({
      label: 'err',
      tokens: { [TOKEN]: { label: 'acme' } },
      accounts: [{ id: 'acme', tier: 'pro', hfToken: TOKEN }],
      workers: 1,
      worker: { concurrency: 1 },
    });
  });

  it('retries a 5xx with backoff, then succeeds', async () => {
    stack.sim.script(TOKEN, [{ status: 500 }, { status: 503, body: 'Service Temporarily Unavailable' }]);
    const handle = await stack.producer.enqueue(classify('five hundred'));
    const result = await handle.result({ timeoutMs: 30_000 });
    expect(result.attempts).toBe(3);
    const job = await stack.producer.queue('acme').getJob(handle.id);
    expect(job?.attemptsMade).toBe(3);
  });

  // A router 401, or a 403 about the account, holds it instead; a 403 about one model fails its job (test/credit-gates.test.ts).
  it.each([400, 404, 422])(
    'fails a %i at once, with status, request id and upstream message',
    async (status) => {
      stack.sim.script(TOKEN, [{ status, body: { error: `upstream says no (${status})` } }]);
      const handle = await stack.producer.enqueue(classify(`bad ${status}`));
      const error = await handle.result({ timeoutMs: 30_000 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(JobFailedError);
      const reason = (error as JobFailedError).reason;
      expect(reason).toContain(`answered ${status}`);
      expect(reason).toContain(`upstream says no (${status})`);
      expect(reason).toMatch(/request id \S+/);
      const job = await stack.producer.queue('acme').getJob(handle.id);
      expect(job?.attemptsMade).toBe(1);
    },
  );
});
