/**
 * The batch route's figures for an account (`batchRoute` in its config; README, "Deadlines and
 * the batch route"), with their defaults in one place.
 */
import type { AccountConfig } from '@hfq/shared';
import { deadlineMarginMs } from './planning-figures.js';

/** The turnaround planned with until enough batches were observed. @defaultValue 10 minutes */
export const DEFAULT_BATCH_TURNAROUND_MS = 10 * 60_000;
/** A batch line's price as a share of the same request in real time. @defaultValue 0.5 */
export const DEFAULT_BATCH_PRICE_SHARE = 0.5;

export function batchRouteEnabled(account: AccountConfig): boolean {
  return account.batchRoute?.enabled !== false;
}

export function batchPriceShare(account: AccountConfig): number {
  return account.batchRoute?.priceShare ?? DEFAULT_BATCH_PRICE_SHARE;
}

export function configuredTurnaroundMs(account: AccountConfig): number {
  return account.batchRoute?.turnaroundMs ?? DEFAULT_BATCH_TURNAROUND_MS;
}

/** The margin kept before a deadline `remainingMs` away: the configured one, else `deadlineMarginMs`. */
export function marginMs(account: AccountConfig, remainingMs: number): number {
  return account.batchRoute?.marginMs ?? deadlineMarginMs(remainingMs);
}

export function minBatchJobs(account: AccountConfig): number {
  return account.batchRoute?.minBatchJobs ?? 1;
}
