/** The baselines' policies, shared by the benchmark (to print them) and the baseline worker (to apply them). */

/** Job options for the plain BullMQ baseline: a 429 is a failed attempt, retried with BullMQ's backoff. */
export const BULLMQ_JOB_OPTIONS = {
  attempts: 20,
  backoff: { type: 'exponential', delay: 1_000 },
} as const;

/** The client-side retry loop (p-retry style): tries, first wait, growth; each wait × (1 + random). */
export const RETRY_POLICY = { tries: 10, baseMs: 500, factor: 2 } as const;

/** The wait after the `attempt`-th 429 in the retry loop. */
export function retryDelayMs(attempt: number, random: () => number = Math.random): number {
  return RETRY_POLICY.baseMs * RETRY_POLICY.factor ** (attempt - 1) * (1 + random());
}

/** One baseline run, as the benchmark hands it to each baseline worker process. */
export interface BaselineRun {
  mode: 'bullmq' | 'retry';
  redisUrl: string;
  prefix: string;
  queue: string;
  token: string;
  routerUrl: string;
  hubUrl: string;
  concurrency: number;
  /** BullMQ's limiter (mode `bullmq` only). */
  limit?: { max: number; durationMs: number };
}
