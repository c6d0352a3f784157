/** The batch planner's rule, as a pure function: which jobs go to a batch, and each batch's hedge time. */
import { describe, expect, test } from 'vitest';
import { type PlanInput, planBatches } from '../packages/worker/src/batch-route/batch-planner.js';
import {
  deadlineMarginMs,
  planningTurnaroundMs,
} from '../packages/worker/src/batch-route/planning-figures.js';

const MINUTE = 60_000;
const NOW = 1_800_000_000_000;

/** The scenario of bench:deadline: 20,000 jobs, about 20/s real time, 3–8 minute turnaround, half price. */
const base = (change: Partial<PlanInput> = {}): PlanInput => ({
  nowMs: NOW,
  deadlineMs: NOW + 40 * MINUTE,
  preference: 'cost',
  marginMs: 2 * MINUTE,
  backlog: { jobs: 20_000, tokens: 20_000 * 300 },
  realtimeRps: 20,
  realtimePricePerMTokens: 0.2,
  batchPricePerMTokens: 0.1,
  batchTurnaroundMs: 8 * MINUTE,
  batchLimits: { maxRequests: 50_000 },
  ...change,
});

describe('planBatches', () => {
  test('a deadline far enough: everything in one batch, hedged so real time alone still makes it', () => {
    const plan = planBatches(base());
    expect(plan.reason).toBe('batch');
    expect(plan.realtimeJobs).toBe(0);
    expect(plan.batches).toHaveLength(1);
    const [batch] = plan.batches;
    // 20,000 jobs at 20/s take 1,000 s in real time: the hedge is that long before deadline − margin.
    expect(batch?.hedgeAtMs).toBe(NOW + 38 * MINUTE - 1_000_000);
    expect(batch?.expectedDoneAtMs).toBe(NOW + 8 * MINUTE);
    expect(batch?.expectedDoneAtMs).toBeLessThanOrEqual(batch?.hedgeAtMs ?? 0);
    expect(plan.meetsDeadline).toBe(true);
    expect(plan.plannedCostUsd / plan.costAllRealtimeUsd).toBeCloseTo(0.5, 10);
  });

  test('a tighter deadline: only what can come back before its hedge goes to a batch, the rest runs now', () => {
    // available 23 min; a batch of B must be back (8 min) before 23 min − B/20 s: B ≤ 15 min × 20/s = 18,000.
    const plan = planBatches(base({ deadlineMs: NOW + 25 * MINUTE }));
    expect(plan.batches.reduce((sum, b) => sum + b.jobs, 0)).toBe(18_000);
    expect(plan.realtimeJobs).toBe(2_000);
    const hedge = plan.batches[0]?.hedgeAtMs ?? 0;
    expect(hedge).toBe(NOW + 8 * MINUTE); // exactly when it is expected back
    // If the batch is stuck: real time finishes its 2,000 by the hedge, then the 18,000 by deadline − margin.
    expect(NOW + (2_000 / 20) * 1000).toBeLessThanOrEqual(hedge);
    expect(hedge + (18_000 / 20) * 1000).toBe(NOW + 23 * MINUTE);
    expect(plan.plannedCostUsd).toBeLessThan(plan.costAllRealtimeUsd);
  });

  test('cut to the provider limits, hedge times stacked back from the deadline', () => {
    const plan = planBatches(base({ batchLimits: { maxRequests: 8_000 } }));
    expect(plan.batches.map((b) => b.jobs)).toEqual([6_667, 6_667, 6_666]);
    const end = NOW + 38 * MINUTE;
    const hedges = plan.batches.map((b) => b.hedgeAtMs);
    expect(hedges[2]).toBeCloseTo(end - (6_666 / 20) * 1000, 6);
    expect(hedges[1]).toBeCloseTo(end - ((6_666 + 6_667) / 20) * 1000, 6);
    expect(hedges[0]).toBeCloseTo(end - 1_000_000, 6);
    // Every batch stuck: cancelling each at its hedge and running it in real time ends at deadline − margin.
    for (let i = 0; i < 2; i++) {
      expect((hedges[i] ?? 0) + ((plan.batches[i]?.jobs ?? 0) / 20) * 1000).toBeCloseTo(
        hedges[i + 1] ?? 0,
        6,
      );
    }
    const byTokens = planBatches(base({ batchLimits: { maxRequests: 50_000, maxTokens: 2_000_000 } }));
    expect(byTokens.batches).toHaveLength(3);
  });

  test('batches already submitted keep the end of the timeline; new ones stack before them', () => {
    const plan = planBatches(base({ backlog: { jobs: 10_000, tokens: 3_000_000 }, committedJobs: 10_000 }));
    expect(plan.batches).toHaveLength(1);
    expect(plan.batches[0]?.hedgeAtMs).toBe(NOW + 38 * MINUTE - 1_000_000);
    const full = planBatches(base({ committedJobs: 30_000 }));
    expect(full.reason).toBe('deadline-unreachable');
  });

  test('a deadline real time alone cannot meet: all real time now, and the plan says it is missed', () => {
    const plan = planBatches(base({ deadlineMs: NOW + 10 * MINUTE }));
    expect(plan).toMatchObject({
      reason: 'deadline-unreachable',
      realtimeJobs: 20_000,
      batches: [],
      meetsDeadline: false,
    });
    expect(plan.projectedFinishMs).toBe(NOW + 1_000_000);
  });

  test('no batch when there is no deadline, speed is preferred, no route, no saving, or no room', () => {
    expect(planBatches(base({ deadlineMs: undefined })).reason).toBe('no-deadline');
    expect(planBatches(base({ preference: 'speed' })).reason).toBe('speed');
    expect(planBatches(base({ batchLimits: undefined })).reason).toBe('no-batch-route');
    expect(planBatches(base({ batchPricePerMTokens: 0.2 })).reason).toBe('batch-not-cheaper');
    // A turnaround as long as the time available: no batched job could be back before its hedge.
    const none = planBatches(base({ batchTurnaroundMs: 38 * MINUTE }));
    expect(none).toMatchObject({ reason: 'no-room-for-batch', realtimeJobs: 20_000, meetsDeadline: true });
    expect(planBatches(base({ deadlineMs: NOW + 26 * MINUTE, minBatchJobs: 50_000 })).reason).toBe(
      'no-room-for-batch',
    );
    for (const reason of ['no-deadline', 'speed']) {
      const plan = planBatches(
        base(reason === 'speed' ? { preference: 'speed' } : { deadlineMs: undefined }),
      );
      expect(plan.plannedCostUsd).toBe(plan.costAllRealtimeUsd);
      expect(plan.realtimeJobs).toBe(20_000);
    }
  });

  test('a capacity that is not a positive number is refused', () => {
    expect(() => planBatches(base({ realtimeRps: 0 }))).toThrow(
      /realtimeRps must be a positive number, got 0/,
    );
    expect(() => planBatches(base({ realtimeRps: Number.NaN }))).toThrow(RangeError);
  });
});

describe('planning figures', () => {
  test('the turnaround: the configured estimate until enough batches were seen, then a high percentile', () => {
    expect(planningTurnaroundMs([], 8 * MINUTE)).toBe(8 * MINUTE);
    expect(planningTurnaroundMs([3 * MINUTE, 12 * MINUTE], 8 * MINUTE)).toBe(12 * MINUTE);
    const seen = [3, 4, 5, 4, 6, 5, 4, 7, 5, 30].map((m) => m * MINUTE);
    expect(planningTurnaroundMs(seen, 8 * MINUTE)).toBe(7 * MINUTE); // the 90th percentile of ten
    expect(planningTurnaroundMs(seen, 8 * MINUTE, { percentile: 1 })).toBe(30 * MINUTE);
    expect(() => planningTurnaroundMs(seen, 1, { percentile: 0 })).toThrow(RangeError);
  });

  test('the margin: 5% of the time left, at least two minutes', () => {
    expect(deadlineMarginMs(40 * MINUTE)).toBe(2 * MINUTE);
    expect(deadlineMarginMs(6 * 60 * MINUTE)).toBe(18 * MINUTE);
  });
});
