/**
 * The account tiers of Hugging Face and hfq's starting numbers for each.
 *
 * Hugging Face publishes monthly Inference Providers credits and Hub API limits per tier,
 * but no inference rate limit. `inference` is therefore an estimate: the rate hfq starts at
 * and the ceiling it learns toward (see `learned-rate`). Override it per account.
 */
export const TIERS = ['free', 'pro', 'team', 'enterprise'] as const;
export type Tier = (typeof TIERS)[number];

export interface TierInfo {
  /** Monthly included Inference Providers credits, in USD (per seat for team and enterprise). */
  monthlyCreditsUsd: number;
  /** True when credits are per seat and pooled per organisation. */
  creditsPerSeat: boolean;
  /** Hub API requests per 5-minute fixed window (applies to Hub calls such as the mapping lookup). */
  hubRequestsPer5Min: number;
  /** Starting inference rate and learned-rate ceiling: `max` requests per `durationMs`. An estimate. */
  inference: { max: number; durationMs: number };
}

export const TIER_TABLE: Readonly<Record<Tier, TierInfo>> = {
  free: {
    monthlyCreditsUsd: 0.1,
    creditsPerSeat: false,
    hubRequestsPer5Min: 1_000,
    inference: { max: 5, durationMs: 1_000 },
  },
  pro: {
    monthlyCreditsUsd: 2,
    creditsPerSeat: false,
    hubRequestsPer5Min: 2_500,
    inference: { max: 20, durationMs: 1_000 },
  },
  team: {
    monthlyCreditsUsd: 2,
    creditsPerSeat: true,
    hubRequestsPer5Min: 3_000,
    inference: { max: 30, durationMs: 1_000 },
  },
  enterprise: {
    monthlyCreditsUsd: 2,
    creditsPerSeat: true,
    hubRequestsPer5Min: 6_000,
    inference: { max: 50, durationMs: 1_000 },
  },
};

/** The monthly HF credit budget of an account: per seat, pooled, for team and enterprise. */
export function tierMonthlyCreditsUsd(tier: Tier, seats = 1): number {
  const info = TIER_TABLE[tier];
  return info.creditsPerSeat ? info.monthlyCreditsUsd * Math.max(1, seats) : info.monthlyCreditsUsd;
}

/** What decides an account's HF budget (see `accountBudgetUsd`). */
export interface BudgetSettings {
  tier: Tier;
  seats?: number | undefined;
  monthlyBudgetUsd?: number | undefined;
  afterIncludedCredits?: 'pay-as-you-go' | 'provider-keys' | undefined;
}

/**
 * The estimated HF spend at which an account stops using the router (provider keys, else a
 * hold): the user's own `monthlyBudgetUsd`; else the tier's included credits when the user chose
 * `afterIncludedCredits: 'provider-keys'`; else none. The included credits are not a ceiling
 * (Hugging Face goes on under pay-as-you-go), so by default only the router's 402 stops it.
 */
export function accountBudgetUsd(account: BudgetSettings): number | undefined {
  if (account.monthlyBudgetUsd !== undefined) return account.monthlyBudgetUsd;
  return account.afterIncludedCredits === 'provider-keys'
    ? tierMonthlyCreditsUsd(account.tier, account.seats)
    : undefined;
}

/** The setting that sets an account's budget, to name in a held message. */
export function budgetSetting(account: BudgetSettings): string {
  return account.monthlyBudgetUsd !== undefined
    ? 'monthlyBudgetUsd (HFQ_MONTHLY_BUDGET_USD)'
    : "afterIncludedCredits: 'provider-keys' (HFQ_AFTER_INCLUDED_CREDITS; 'pay-as-you-go' goes on until the router's 402)";
}
