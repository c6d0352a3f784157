/** The result of one inference job: what `handle.result()` resolves to and the worker returns. */
export interface InferenceResult<Output = unknown> {
  /** What the `@huggingface/inference` task method returned; binary outputs become `{ contentType, base64 }`. */
  output: Output;
  /** The provider that served the request (from `x-inference-provider` when the router names it). */
  provider: string;
  /**
   * `hf-router`: through Hugging Face with the HF token; `provider-key`: directly, billed by the
   * provider; `endpoint`: the account's own Inference Endpoint (billed by the hour, `costUsd` 0);
   * `provider-batch`: a provider's batch API with the user's key, at its batch price.
   */
  route: 'hf-router' | 'provider-key' | 'endpoint' | 'provider-batch';
  /** Runs that reached the upstream (1 for a first-time success). */
  attempts: number;
  /** Time this job spent waiting for permits and 429 pauses, in ms. */
  throttledMs: number;
  /** Time of the upstream call that succeeded, in ms. */
  latencyMs: number;
  /** Estimated cost of the request in USD (see the price table); 0 when answered from the result ledger. */
  costUsd: number;
  /** Answered from the account's result ledger (README, 'Pay once'): no upstream request this time. */
  reused?: true;
}

/** Binary output (an image) as a job's return value: JSON-safe and capped in size. */
export interface BinaryOutput {
  contentType: string;
  base64: string;
}

/** Job retention defaults (see docs/architecture.md, "Retention and delivery"): completed and failed jobs are removed by age and count. */
export const DEFAULT_RETENTION = {
  /** Completed jobs: kept 24 hours, at most 100,000 per queue. */
  removeOnComplete: { age: 24 * 3600, count: 100_000 },
  /** Failed jobs: kept 7 days, at most 100,000 per queue. */
  removeOnFail: { age: 7 * 24 * 3600, count: 100_000 },
} as const;

/** Real failures a job may have (5xx, timeouts) before it fails; each retry waits with full jitter. */
export const DEFAULT_ATTEMPTS = 5;
export const DEFAULT_BACKOFF = { type: 'exponential', delay: 1_000, jitter: 1 } as const;
