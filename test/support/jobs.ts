import type { Job } from '@hfq/shared';

/** The embedding model most tests run on: the simulator answers it on the router and on provider keys. */
export const EMBEDDER = 'sentence-transformers/all-MiniLM-L6-v2';

/** A small embedding job, `text <i>`, for an account (`acme` by default). */
export function embedJob(i: number, account = 'acme', model = EMBEDDER): Job {
  return { account, task: 'feature-extraction', model, inputs: `text ${i}` };
}
