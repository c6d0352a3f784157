import type { AccountStatus } from '../admin.js';

/** `2026-12-06 12:40 UTC`. */
function utc(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/**
 * What `hfq status` and the board say about an account's HF spend beside its numbers: spend
 * against the tier's included credits (not a ceiling: past them is pay-as-you-go, and since
 * when), and what the result ledger saved this month. `money` formats amounts as the caller does.
 */
export function spendNotes(s: AccountStatus, money: (usd: number) => string): string[] {
  const notes: string[] = [];
  const included = s.includedCreditsUsd;
  // Nothing spent yet: nothing to say.
  if (included !== undefined && (s.spend.hfRouterUsd > 0 || s.spend.payAsYouGoSinceMs !== undefined)) {
    const since = s.spend.payAsYouGoSinceMs;
    notes.push(
      since !== undefined || s.spend.hfRouterUsd >= included
        ? `HF spend ${money(s.spend.hfRouterUsd)} of the tier's included ${money(included)}: pay-as-you-go${since !== undefined ? ` since ${utc(since)}` : ''}`
        : `HF spend ${money(s.spend.hfRouterUsd)} of the tier's included ${money(included)}`,
    );
  }
  if (s.spend.reusedRequests > 0) {
    notes.push(
      `${s.spend.reusedRequests} result${s.spend.reusedRequests === 1 ? '' : 's'} reused from the ledger this month, ≈ ${money(s.spend.reusedUsd)} saved`,
    );
  }
  return notes;
}

/**
 * What the result ledger saved between two readings of an account's spend (`Admin.status()`
 * before and after a run): for a run's closing summary, such as `hfq enqueue`'s.
 */
export function reusedSince(
  before: Pick<AccountStatus['spend'], 'month' | 'reusedRequests' | 'reusedUsd'> | undefined,
  after: Pick<AccountStatus['spend'], 'month' | 'reusedRequests' | 'reusedUsd'>,
): { results: number; savedUsd: number } {
  // A run across a month's end: the new month's ledger started from zero.
  const base = before && before.month === after.month ? before : { reusedRequests: 0, reusedUsd: 0 };
  return {
    results: Math.max(0, after.reusedRequests - base.reusedRequests),
    savedUsd: Math.max(0, after.reusedUsd - base.reusedUsd),
  };
}
