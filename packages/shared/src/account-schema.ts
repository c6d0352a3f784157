import { z } from 'zod';
import { ENDPOINTS, ROUTING_POLICY } from './endpoint-schema.js';
import { ACCOUNT_ID, PROVIDER_NAME } from './job-schema.js';
import { TIERS } from './tiers.js';

/**
 * One rate-limit window: at most `max` requests (or `tokens` model tokens) in any sliding
 * window of `durationMs`. A domain may have several at once (per second, minute, day).
 */
export const RATE_WINDOW = z.union([
  z.object({ max: z.number().int().positive(), durationMs: z.number().int().positive() }).strict(),
  z.object({ tokens: z.number().int().positive(), durationMs: z.number().int().positive() }).strict(),
]);
export type RateWindow = z.infer<typeof RATE_WINDOW>;

const PROVIDER_KEY = z.union([
  z.string().min(1),
  z
    .object({
      key: z.string().min(1),
      limits: z.array(RATE_WINDOW).min(1).max(8).optional(),
    })
    .strict(),
]);

/** An account as the worker needs it. Secrets (`hfToken`, provider keys) stay in process memory. */
export const ACCOUNT_CONFIG = z
  .object({
    id: ACCOUNT_ID,
    tier: z.enum(TIERS),
    hfToken: z.string().regex(/^hf_[A-Za-z0-9_]+$/, 'a Hugging Face token starting with "hf_"'),
    /** Organisation to bill (`X-HF-Bill-To`) on router calls; its credits are pooled. */
    billTo: z.string().min(1).max(96).optional(),
    /** Seats of a team or enterprise organisation (credits are $2 per seat, pooled). */
    seats: z.number().int().positive().optional(),
    /** One request window overriding the tier's starting rate and ceiling. */
    limit: z
      .object({ max: z.number().int().positive(), durationMs: z.number().int().positive() })
      .strict()
      .optional(),
    /** Several windows at once; the first request window is the one learned and shown. */
    limits: z.array(RATE_WINDOW).min(1).max(8).optional(),
    /** The user's own keys for partner providers, used in direct mode after HF credits run out. */
    providerKeys: z.record(PROVIDER_NAME, PROVIDER_KEY).optional(),
    /** Providers to fail over to, in order, when the job's own provider has no key. */
    fallbackProviders: z.array(PROVIDER_NAME).max(16).optional(),
    /**
     * Estimated HF spend per month after which hfq switches to provider keys (or holds). Default:
     * none, the router's 402 is the signal (README, 'A budget is your choice').
     */
    monthlyBudgetUsd: z.number().nonnegative().optional(),
    /**
     * Past the tier's included credits: go on under Hugging Face pay-as-you-go (default) until the
     * router answers 402, or switch to the provider keys at once (`provider-keys`, estimated).
     */
    afterIncludedCredits: z.enum(['pay-as-you-go', 'provider-keys']).optional(),
    /** Cap on estimated spend through provider keys per month; reaching it holds the account. */
    providerBudgetUsd: z.number().nonnegative().optional(),
    /** With HF credits gone and no usable key: hold the queue (default) or fail the jobs. */
    onNoKey: z.enum(['hold', 'fail']).optional(),
    /** Real upstream 429s a job may receive before it fails. Default 50. */
    max429s: z.number().int().positive().optional(),
    /** The account's Inference Endpoints (dedicated capacity), called with its HF token. */
    endpoints: ENDPOINTS.optional(),
    /**
     * Opt-in result reuse (README, 'Pay once'): a completed result answers the same request
     * (content identity) from Redis, with no upstream request, for `ttlMs`, within `maxBytes` of
     * result JSON (oldest evicted first). Sampling jobs and `unique: false` are never answered.
     */
    resultReuse: z
      .object({
        ttlMs: z
          .number()
          .int()
          .min(1_000)
          .max(31 * 86_400_000),
        maxBytes: z
          .number()
          .int()
          .min(1_024)
          .max(16 * 1024 ** 3),
      })
      .strict()
      .optional(),
    /**
     * The batch route's figures (README, "Deadlines and the batch route"), for jobs with a
     * deadline and preference `cost`: the batch turnaround to plan with until enough batches were
     * observed (default 10 minutes), the margin kept before a deadline (default 5% of the time
     * left, at least two minutes), the batch price as a share of real time (default 0.5), the
     * smallest batch worth submitting (default 1), and `enabled: false` to run everything in real time.
     */
    batchRoute: z
      .object({
        enabled: z.boolean().optional(),
        turnaroundMs: z.number().int().min(1).max(86_400_000).optional(),
        marginMs: z.number().int().min(0).max(86_400_000).optional(),
        priceShare: z.number().gt(0).max(1).optional(),
        minBatchJobs: z.number().int().min(1).max(50_000).optional(),
      })
      .strict()
      .optional(),
    /** Router or endpoint first, for jobs an endpoint serves. Default `endpoint-first`. */
    routing: ROUTING_POLICY.optional(),
  })
  .strict()
  .refine((a) => !(a.limit && a.limits), { message: 'set "limit" or "limits", not both', path: ['limits'] })
  .refine((a) => !a.billTo || a.tier === 'team' || a.tier === 'enterprise', {
    message: 'billTo needs a team or enterprise tier',
    path: ['billTo'],
  })
  // A fallback is only ever used through its key: one without a key is a typo or a missing key.
  .refine((a) => (a.fallbackProviders ?? []).every((p) => a.providerKeys?.[p] !== undefined), {
    message: 'every fallback provider needs a key in providerKeys (HFQ_PROVIDER_KEYS)',
    path: ['fallbackProviders'],
  });
export type AccountConfig = z.infer<typeof ACCOUNT_CONFIG>;
export type AccountConfigInput = z.input<typeof ACCOUNT_CONFIG>;

export const ACCOUNTS = z
  .array(ACCOUNT_CONFIG)
  .min(1)
  .refine((list) => new Set(list.map((a) => a.id)).size === list.length, 'account ids must be unique');

/** Provider key of an account in one shape, whatever form the config used. */
export function providerKeyOf(
  account: AccountConfig,
  provider: string,
): { key: string; limits: RateWindow[] | undefined } | undefined {
  const entry = account.providerKeys?.[provider];
  if (entry === undefined) return undefined;
  return typeof entry === 'string'
    ? { key: entry, limits: undefined }
    : { key: entry.key, limits: entry.limits };
}
