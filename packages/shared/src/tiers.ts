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

/** The estimated HF spend at which an account switches to its provider keys: its own budget, else its tier's credits. */
export function accountBudgetUsd(account: {
  tier: Tier;
  seats?: number | undefined;
  monthlyBudgetUsd?: number | undefined;
}): number {
  return account.monthlyBudgetUsd ?? tierMonthlyCreditsUsd(account.tier, account.seats);
}
