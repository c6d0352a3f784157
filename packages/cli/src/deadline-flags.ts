import { DEADLINE_FORMS, readDeadline } from '@hfq/producer/internal';
import { UsageError } from './usage.js';

/**
 * `hfq enqueue --deadline <when> [--prefer cost|speed] [--deadline-strict]`, read once before
 * anything reaches Redis: every job of the run carries the same deadline (a duration is counted
 * from now, once), as the producer's `deadline` option reads it.
 */
export interface RunDeadline {
  /** Epoch ms. */
  atMs: number;
  preference: 'cost' | 'speed';
  /** Refuse the run (exit 3) when the projection says the deadline cannot be met. */
  strict: boolean;
}

/** The exit code of `--deadline-strict` refusing a deadline it cannot meet (usage errors are 2, failures 1). */
export const DEADLINE_MISSED_EXIT = 3;

export function readDeadlineFlags(
  values: { deadline?: string; prefer?: string; 'deadline-strict'?: boolean },
  usage: string,
  nowMs: number,
): RunDeadline | undefined {
  const { deadline, prefer } = values;
  const strict = values['deadline-strict'] === true;
  if (deadline === undefined) {
    if (prefer !== undefined) throw new UsageError('--prefer applies only with --deadline', usage);
    if (strict) throw new UsageError('--deadline-strict applies only with --deadline', usage);
    return undefined;
  }
  const read = readDeadline(deadline, nowMs);
  if (!read.ok) {
    // The producer's wording names a `Date`, which a command line cannot give.
    const wanted = !read.reason.startsWith(DEADLINE_FORMS)
      ? read.reason
      : 'a duration such as 90m, 6h or 1h30m, or an ISO time with a zone (2026-12-24T18:00Z)';
    throw new UsageError(`--deadline takes ${wanted}, got "${deadline}"`, usage);
  }
  if (prefer !== undefined && prefer !== 'cost' && prefer !== 'speed')
    throw new UsageError(`--prefer takes cost or speed, got "${prefer}"`, usage);
  return { atMs: read.atMs, preference: prefer ?? 'cost', strict };
}
