import { etaMs, RECENT_RATE_WINDOW_MS, recentRate, type SpendByRoute } from '@hfq/shared/internal';
import { HISTORY_BUCKET_MS } from './history-keys.js';
import type { HistoryPoint } from './history-reader.js';

/**
 * ETA and cost to complete, from the history and the ledger: backlog ÷ the recent rate of
 * completions (`recentRate`, the same as `hfq enqueue --wait`'s, over the last `windowMs`), the backlog's cost at this month's average cost per request on the route in use,
 * and when the HF credits run out at the current spend rate.
 */
export interface AccountForecast {
  /** Jobs completed per second over the window (all workers). */
  throughputPerSecond: number;
  backlog: number;
  /** Time to drain the backlog at that throughput; undefined with no throughput or nothing to do. */
  etaMs: number | undefined;
  /** Estimated USD per request on the route in use (this month's ledger average). */
  costPerRequestUsd: number | undefined;
  /** Estimated spend of the backlog at that price. */
  backlogCostUsd: number | undefined;
  /** Budget less estimated HF-router spend this month. */
  creditsLeftUsd: number;
  /** Estimated HF-router spend per hour at the current throughput. */
  hfSpendPerHourUsd: number | undefined;
  /** When the credits run out at that rate (ms since the epoch); undefined if they do not. */
  creditsRunOutAtMs: number | undefined;
}

/** The throughput is measured over the same recent window as `hfq enqueue --wait`'s rate. */
export const FORECAST_WINDOW_MS = RECENT_RATE_WINDOW_MS;

/**
 * The history's completions as cumulative samples for `recentRate`: a left edge at the window's
 * start (or the run's first bucket, when it started inside the window), then each bucket's total
 * at its end (the bucket in progress at now).
 */
function completionSamples(
  history: readonly HistoryPoint[],
  nowMs: number,
  windowMs: number,
): [number, number][] {
  const from = nowMs - windowMs;
  const recent = history.filter((p) => p.t + HISTORY_BUCKET_MS > from && p.t <= nowMs);
  const firstActive = recent.find((p) => p.completed > 0 || p.ok > 0)?.t;
  if (firstActive === undefined) return [];
  // A run measured from its first bucket, never from less than one bucket ago.
  const edge = Math.min(Math.max(from, firstActive), nowMs - HISTORY_BUCKET_MS);
  const samples: [number, number][] = [[edge, 0]];
  let total = 0;
  for (const p of recent) {
    if (p.t < edge) continue;
    total += p.completed;
    samples.push([Math.min(p.t + HISTORY_BUCKET_MS, nowMs), total]);
  }
  return samples;
}

export function forecast(input: {
  history: readonly HistoryPoint[];
  backlog: number;
  spend: SpendByRoute;
  budgetUsd: number;
  route: 'hf-router' | 'provider-key' | 'holding';
  nowMs: number;
  windowMs?: number;
}): AccountForecast {
  const windowMs = input.windowMs ?? FORECAST_WINDOW_MS;
  const throughputPerSecond =
    recentRate(completionSamples(input.history, input.nowMs, windowMs), input.nowMs) ?? 0;
  const eta = etaMs(input.backlog, throughputPerSecond);
  const onKeys = input.route === 'provider-key';
  const usd = onKeys ? input.spend.providerKeyUsd : input.spend.hfRouterUsd;
  const requests = onKeys ? input.spend.providerKeyRequests : input.spend.hfRouterRequests;
  const costPerRequestUsd = requests > 0 ? usd / requests : undefined;
  const backlogCostUsd = costPerRequestUsd === undefined ? undefined : costPerRequestUsd * input.backlog;
  const creditsLeftUsd = Math.max(0, input.budgetUsd - input.spend.hfRouterUsd);
  const hfSpendPerHourUsd =
    input.route === 'hf-router' && costPerRequestUsd !== undefined
      ? throughputPerSecond * costPerRequestUsd * 3600
      : undefined;
  const creditsRunOutAtMs =
    hfSpendPerHourUsd !== undefined && hfSpendPerHourUsd > 0
      ? input.nowMs + (creditsLeftUsd / hfSpendPerHourUsd) * 3_600_000
      : undefined;
  return {
    throughputPerSecond,
    backlog: input.backlog,
    etaMs: eta,
    costPerRequestUsd,
    backlogCostUsd,
    creditsLeftUsd,
    hfSpendPerHourUsd,
    creditsRunOutAtMs,
  };
}

/** `42 s`, `3 m 20 s`, `1 h 05 m`, `3 d`: how the status page and `hfq status` show an ETA or an age. */
export function durationText(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, '0')} s`;
  if (s < 172_800)
    return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} m`;
  return `${Math.round(s / 86_400)} d`;
}
