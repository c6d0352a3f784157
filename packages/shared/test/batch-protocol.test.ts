import type { InferenceResult } from '@hfq/shared';
import { type BatchSplitOutput, itemsDone, parentProgress, splitHalvesOf } from '@hfq/shared/internal';
import { describe, expect, it } from 'vitest';

const result = <T>(output: T): InferenceResult<T> => ({
  output,
  provider: 'none',
  route: 'hf-router',
  attempts: 1,
  throttledMs: 0,
  latencyMs: 0,
  costUsd: 0,
});

describe('batch split protocol', () => {
  it('reads the halves a split child names, in order', () => {
    const split: BatchSplitOutput = {
      hfqSplit: [
        { id: 'c7.0', count: 16 },
        { id: 'c7.1', count: 17 },
      ],
    };
    expect(splitHalvesOf(result(split))).toEqual(split.hfqSplit);
    // Through JSON, as BullMQ stores a return value.
    expect(splitHalvesOf(JSON.parse(JSON.stringify(result(split))))).toEqual(split.hfqSplit);
  });

  it('is not a split for an answer, a missing output or no value', () => {
    expect(splitHalvesOf(result([[0.1, 0.2]]))).toBeUndefined();
    expect(splitHalvesOf(result({ hfqSplit: 'c7.0' }))).toBeUndefined();
    expect(splitHalvesOf(result(null))).toBeUndefined();
    expect(splitHalvesOf({})).toBeUndefined();
    expect(splitHalvesOf(null)).toBeUndefined();
    expect(splitHalvesOf(undefined)).toBeUndefined();
  });

  it('leaves out entries that are not a job id with a positive item count', () => {
    const halves = splitHalvesOf(
      result({
        hfqSplit: [
          { id: 'a', count: 2 },
          { id: 3, count: 2 },
          { id: 'b', count: 0 },
          { id: 'c', count: 1.5 },
          null,
          { id: 'd', count: 1 },
        ],
      }),
    );
    expect(halves).toEqual([
      { id: 'a', count: 2 },
      { id: 'd', count: 1 },
    ]);
    // Still a split (so its items are not counted), even with no usable half.
    expect(splitHalvesOf(result({ hfqSplit: [] }))).toEqual([]);
  });
});

describe('batch progress', () => {
  it('counts every ok, failed or cancelled item as done', () => {
    expect(itemsDone({ ok: 3, failed: 2, cancelled: 1 })).toBe(6);
  });

  it('gives the parent job the counters and the percent done, rounded down', () => {
    expect(parentProgress({ total: 3, ok: 1, failed: 1, cancelled: 0, sealed: false })).toEqual({
      progress: 66,
      total: 3,
      done: 2,
      ok: 1,
      failed: 1,
      cancelled: 0,
      sealed: false,
    });
    expect(parentProgress({ total: 0, ok: 0, failed: 0, cancelled: 0, sealed: true }).progress).toBe(0);
    expect(parentProgress({ total: 4, ok: 2, failed: 1, cancelled: 1, sealed: true }).progress).toBe(100);
  });
});
