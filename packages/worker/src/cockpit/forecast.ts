import type { SpendByRoute } from '@hfq/shared/internal';
import type { HistoryPoint } from './history-reader.js';

/**
 * ETA and cost to complete, from the history and the ledger: backlog ÷ throughput over the last
 * `windowMs`, the backlog's cost at this month's average cost per request on the route in use,
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

export const FORECAST_WINDOW_MS = 5 * 60_000;

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
  const from = input.nowMs - windowMs;
  const recent = input.history.filter((p) => p.t >= from);
  const completed = recent.reduce((n, p) => n + p.completed, 0);
  // A run that started inside the window is measured from its first bucket, not the window's start.
  const firstActive = recent.find((p) => p.completed > 0 || p.ok > 0)?.t;
  const elapsedMs = firstActive === undefined ? windowMs : Math.max(input.nowMs - firstActive, 10_000);
  const throughputPerSecond = (completed * 1000) / elapsedMs;
  const etaMs =
    input.backlog > 0 && throughputPerSecond > 0 ? (input.backlog / throughputPerSecond) * 1000 : undefined;
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
    etaMs,
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
