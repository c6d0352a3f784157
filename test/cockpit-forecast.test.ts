import type { SpendByRoute } from '@hfq/shared/internal';
import type { HistoryPoint } from '@hfq/worker';
import { durationText, forecast } from '@hfq/worker/internal';
import { describe, expect, it, vi } from 'vitest';

/** ETA and cost to complete from the history and the ledger (pure: no Redis). */

const NOW = Date.UTC(2026, 10, 29, 12, 0, 0);

function point(secondsAgo: number, completed: number): HistoryPoint {
  return {
    t: NOW - secondsAgo * 1000,
    completed,
    failed: 0,
    ok: completed,
    throttled: 0,
    credits: 0,
    error: 0,
    learnedRate: null,
    configuredRate: null,
    overrideRate: null,
    backlog: null,
    spendHf: null,
    spendKeys: null,
  };
}

const spend = (usd: number, requests: number): SpendByRoute => ({
  month: '2026-11',
  hfRouterUsd: usd,
  providerKeyUsd: 0,
  hfRouterRequests: requests,
  providerKeyRequests: 0,
  payAsYouGoSinceMs: undefined,
  reusedRequests: 0,
  reusedUsd: 0,
});

describe('forecast', () => {
  it('backlog ÷ throughput over the recent window (30 s), cost at the month average, credits run-out time', () => {
    // 30 buckets of 100 completions over the last 300 s: 10 jobs/s.
    const history = Array.from({ length: 30 }, (_, i) => point(300 - i * 10, 100));
    const f = forecast({
      history,
      backlog: 6000,
      spend: spend(1, 1000),
      budgetUsd: 2,
      route: 'hf-router',
      nowMs: NOW,
    });
    expect(f.throughputPerSecond).toBeCloseTo(10, 5);
    expect(f.etaMs).toBeCloseTo(600_000, -1);
    expect(f.costPerRequestUsd).toBeCloseTo(0.001, 9);
    expect(f.backlogCostUsd).toBeCloseTo(6, 6);
    expect(f.creditsLeftUsd).toBeCloseTo(1, 9);
    // $0.001 × 10/s = $36/h: $1 lasts 100 s.
    expect(f.hfSpendPerHourUsd).toBeCloseTo(36, 6);
    expect((f.creditsRunOutAtMs ?? 0) - NOW).toBeCloseTo(100_000, -1);
  });

  it('a run that started inside the window is measured from its first bucket, not the window start', () => {
    const history = [
      point(60, 100),
      point(50, 100),
      point(40, 100),
      point(30, 100),
      point(20, 100),
      point(10, 100),
    ];
    const f = forecast({
      history,
      backlog: 100,
      spend: spend(0, 0),
      budgetUsd: 2,
      route: 'hf-router',
      nowMs: NOW,
    });
    expect(f.throughputPerSecond).toBeCloseTo(10, 5);
    expect(f.costPerRequestUsd).toBeUndefined();
    expect(f.creditsRunOutAtMs).toBeUndefined();
  });

  it('no throughput means no ETA; no backlog means nothing to wait for; provider keys spend no HF credits', () => {
    expect(
      forecast({ history: [], backlog: 10, spend: spend(0, 0), budgetUsd: 2, route: 'hf-router', nowMs: NOW })
        .etaMs,
    ).toBeUndefined();
    const idle = forecast({
      history: [point(20, 5)],
      backlog: 0,
      spend: spend(0.5, 10),
      budgetUsd: 2,
      route: 'hf-router',
      nowMs: NOW,
    });
    expect(idle.etaMs).toBeUndefined();
    expect(idle.backlogCostUsd).toBe(0);
    const keys = forecast({
      history: [point(20, 5)],
      backlog: 10,
      spend: spend(2, 10),
      budgetUsd: 2,
      route: 'provider-key',
      nowMs: NOW,
    });
    expect(keys.creditsLeftUsd).toBe(0);
    expect(keys.hfSpendPerHourUsd).toBeUndefined();
  });
});

describe('the cockpit and `hfq enqueue --wait` share one recent rate', () => {
  it('25 s into a run after idle minutes: both say the run’s own rate and the same ETA', async () => {
    const { Progress } = await import('../packages/cli/src/progress.js');
    // Idle for ten minutes, then 4 jobs/s for the last 25 s (the newest bucket still filling).
    const history = [point(25, 20), point(15, 40), point(5, 40)];
    const f = forecast({
      history,
      backlog: 400,
      spend: spend(0, 0),
      budgetUsd: 2,
      route: 'hf-router',
      nowMs: NOW,
    });
    expect(f.throughputPerSecond).toBeCloseTo(4, 5);
    expect(f.etaMs).toBeCloseTo(100_000, -2);

    // The CLI's progress line over the same 25 s: 100 jobs of 500 done, at 4 per second.
    vi.useFakeTimers({ now: NOW - 25_000 });
    try {
      const sink = { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream;
      const progress = new Progress(500, sink);
      progress.set({ enqueued: 500, done: 0, failed: 0 });
      for (let i = 0; i < 100; i++) {
        vi.setSystemTime(NOW - 25_000 + (i + 1) * 250);
        progress.done(true);
      }
      const rate = progress.rate(NOW) ?? 0;
      expect(rate).toBeCloseTo(f.throughputPerSecond, 5);
      expect(progress.line()).toContain('4.0/s  ETA 1m40s');
      expect(durationText(f.etaMs ?? 0)).toBe('1 m 40 s');
    } finally {
      vi.useRealTimers();
    }
  });
});
