/**
 * The projection `hfq enqueue --deadline` prints, as pure functions: the capacity it reads from an
 * account's status, which keys could take a batch, the planner's verdict, and the progress line's
 * finish against the deadline (the clock set by vitest, nothing sleeps).
 */
import { afterEach, describe, expect, test, vi } from 'vitest';
import { clockText, slackText } from '../packages/cli/src/deadline-projection.js';
import { Progress } from '../packages/cli/src/progress.js';
import {
  batchProvidersOf,
  type ProjectionStatus,
  projectDeadline,
  realtimeCapacity,
} from '../packages/worker/src/batch-route/deadline-projection.js';

const NOW = Date.parse('2026-12-06T12:00:00Z');
const MINUTE = 60_000;
const OK = { state: 'ok' } as const;

const status = (change: Partial<ProjectionStatus> = {}): ProjectionStatus => ({
  account: 'acme',
  counts: { waiting: 0 },
  learnedRate: undefined,
  configuredRate: { max: 100, durationMs: 10_000 },
  forecast: { throughputPerSecond: 0 },
  keys: [],
  ...change,
});
const chat = (jobs: number) => ({ jobs, tokens: jobs * 300, costUsd: jobs * 0.0001, chatJobs: jobs });

describe('realtimeCapacity', () => {
  test('the configured limit per second before anything is learned, then the learned rate', () => {
    expect(realtimeCapacity(status())).toEqual({ rps: 10, source: 'configured' });
    expect(realtimeCapacity(status({ learnedRate: 40 }))).toEqual({ rps: 4, source: 'learned' });
  });

  test('the measured throughput when it is higher (keys and endpoints add to the router), none when nothing is known', () => {
    expect(realtimeCapacity(status({ forecast: { throughputPerSecond: 25 } }))).toEqual({
      rps: 25,
      source: 'measured',
    });
    expect(realtimeCapacity(status({ configuredRate: undefined }))).toBeUndefined();
  });
});

describe('batchProvidersOf', () => {
  test('keys whose provider has a batch API and whose gate is open', () => {
    const keys = [
      { provider: 'together', credits: OK },
      { provider: 'cerebras', credits: OK },
      {
        provider: 'groq',
        credits: {
          state: 'exhausted',
          reason: '402 from the key',
          untilMs: NOW + MINUTE,
          sinceMs: NOW,
          nextProbeAtMs: NOW + MINUTE,
        } as const,
      },
    ];
    expect(batchProvidersOf({ keys })).toEqual(['together']);
  });
});

describe('projectDeadline', () => {
  const together = [{ provider: 'together', credits: OK }];

  test('the backlog and the run together: a deadline real time cannot meet is missed, batch key or not', () => {
    // 1,000 waiting + 2,000 of the run at 10/s: 300 s; a 4-minute deadline less its 2-minute margin.
    const p = projectDeadline({
      status: status({ counts: { waiting: 900, prioritized: 50, delayed: 50, active: 7 }, keys: together }),
      run: chat(2000),
      deadlineMs: NOW + 4 * MINUTE,
      preference: 'cost',
      nowMs: NOW,
    });
    expect(p.backlog).toBe(1000);
    expect(p.jobs).toBe(3000);
    expect(p.plan?.meetsDeadline).toBe(false);
    expect(p.plan?.reason).toBe('deadline-unreachable');
    expect(p.plan?.projectedFinishMs).toBe(NOW + 300_000);
  });

  test('a far deadline with a batch key: chat completions go to a batch, embeddings do not', () => {
    const far = { deadlineMs: NOW + 6 * 60 * MINUTE, preference: 'cost' as const, nowMs: NOW };
    const chatRun = projectDeadline({ status: status({ keys: together }), run: chat(2000), ...far });
    expect(chatRun.batchProviders).toEqual(['together']);
    expect(chatRun.plan?.reason).toBe('batch');
    expect(chatRun.plan?.realtimeJobs).toBe(0);
    expect(chatRun.plan?.plannedCostUsd).toBeCloseTo((chatRun.plan?.costAllRealtimeUsd ?? 0) / 2, 10);
    const embeddings = projectDeadline({
      status: status({ keys: together }),
      run: { ...chat(2000), chatJobs: 0 },
      ...far,
    });
    expect(embeddings.batchProviders).toEqual([]);
    expect(embeddings.plan?.reason).toBe('no-batch-route');
    expect(embeddings.plan?.meetsDeadline).toBe(true);
  });

  test('no capacity known: no verdict', () => {
    const p = projectDeadline({
      status: status({ configuredRate: undefined }),
      run: chat(10),
      deadlineMs: NOW + MINUTE,
      preference: 'cost',
      nowMs: NOW,
    });
    expect(p.plan).toBeUndefined();
  });
});

describe('the progress line with a deadline', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const quiet = { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream;

  function runAt(perSecond: number, seconds: number, total: number, deadlineMs: number): Progress {
    vi.useFakeTimers({ now: NOW, toFake: ['Date'] });
    const progress = new Progress(total, quiet);
    progress.setDeadline(deadlineMs);
    progress.enqueued(total);
    for (let s = 1; s <= seconds; s++) {
      vi.setSystemTime(NOW + s * 1000);
      for (let i = 0; i < perSecond; i++) progress.done(true);
    }
    return progress;
  }

  test('the projected finish before the deadline', () => {
    // About 10/s for 10 s: 900 left, about 90 s more.
    const progress = runAt(10, 10, 1000, NOW + 60 * MINUTE);
    const finish = NOW + 10_000 + (900 / (progress.rate() ?? 0)) * 1000;
    expect(progress.line()).toContain(
      `finish ~${clockText(finish, NOW)}, ${slackText(finish, NOW + 60 * MINUTE)} deadline ${clockText(NOW + 60 * MINUTE, NOW)}`,
    );
    expect(progress.line()).toMatch(/finish ~12:01Z, 58 m \d\d s before deadline 13:00Z$/);
  });

  test('the projected finish after the deadline', () => {
    const line = runAt(1, 10, 100, NOW + 60_000).line();
    expect(line).toContain(`finish ~${clockText(NOW + 100_000, NOW)}, 40 s after deadline`);
  });

  test('before any rate, and once every job finished', () => {
    vi.useFakeTimers({ now: NOW, toFake: ['Date'] });
    const progress = new Progress(2, quiet);
    progress.setDeadline(NOW + MINUTE);
    expect(progress.line()).toContain(`finish ? (deadline ${clockText(NOW + MINUTE, NOW)})`);
    progress.done(true);
    progress.done(true);
    expect(progress.line()).toMatch(/done 2 .*deadline 12:01Z$/);
  });
});
