import type { Job } from '@hfq/shared';
import { type BatchRequest, batchRequestFor } from '../../packages/worker/src/batch-route/batch-requests.js';

/** The embedding model most tests run on: the simulator answers it on the router and on provider keys. */
export const EMBEDDER = 'sentence-transformers/all-MiniLM-L6-v2';

/** A small embedding job, `text <i>`, for an account (`acme` by default). */
export function embedJob(i: number, account = 'acme', model = EMBEDDER): Job {
  return { account, task: 'feature-extraction', model, inputs: `text ${i}` };
}

/**
 * `count` chat jobs of account `acme`, `q<i>`, as provider batch requests `job-<i>` for the
 * provider's `model` (`i` counting from `from`).
 */
export function chatBatchRequests(count: number, model: string, from = 0): BatchRequest[] {
  return Array.from({ length: count }, (_, i) =>
    batchRequestFor(
      `job-${from + i}`,
      {
        account: 'acme',
        task: 'chat-completion',
        model: 'm/m',
        messages: [{ role: 'user', content: `q${from + i}` }],
      },
      model,
    ),
  );
}
