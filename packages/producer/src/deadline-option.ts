/**
 * The `deadline` enqueue option (see docs/architecture.md, "Deadlines and the batch route"): when
 * the caller needs the job done by, as an ISO 8601 time, a `Date`, or a duration from now
 * (`90s`, `45m`, `6h`, `1.5d`, `1h30m`). Read into epoch ms before anything reaches Redis.
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
/** A date and a time with an offset or `Z`: a time without a zone would mean the machine's. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/;
/** Ten years: further than any batch window or queue retention means a typo. */
const MAX_AHEAD_MS = 10 * 365 * 86_400_000;

export const DEADLINE_FORMS =
  'an ISO 8601 time with a zone ("2026-12-24T18:00:00Z"), a Date, or a duration such as "45m", "6h" or "1h30m"';

import type { JobData } from '@hfq/shared/internal';

/** The `deadline` and `preference` options, as the caller gives them (`enqueue`, `enqueueBatch`). */
export interface DueOptions {
  deadline?: string | Date;
  preference?: 'cost' | 'speed';
}

/** The options as job data (`dueAt`, `preference`), or the field that is wrong and why. */
export function readDueOptions(
  options: DueOptions,
  nowMs: number,
): { ok: true; due: Pick<JobData, 'dueAt' | 'preference'> } | { ok: false; path: string; message: string } {
  const { deadline, preference } = options;
  if (preference !== undefined && preference !== 'cost' && preference !== 'speed') {
    return { ok: false, path: 'preference', message: '"cost" or "speed"' };
  }
  if (deadline === undefined) {
    if (preference === undefined) return { ok: true, due: {} };
    return {
      ok: false,
      path: 'preference',
      message: 'only with a deadline (without one, every job runs as fast as it can)',
    };
  }
  const read = readDeadline(deadline, nowMs);
  if (!read.ok) return { ok: false, path: 'deadline', message: read.reason };
  return { ok: true, due: { dueAt: read.atMs, preference: preference ?? 'cost' } };
}

/** Epoch ms of a deadline, or the reason it is not one (a message for the `deadline` field). */
export function readDeadline(
  value: unknown,
  nowMs: number,
): { ok: true; atMs: number } | { ok: false; reason: string } {
  let atMs: number;
  if (value instanceof Date) atMs = value.getTime();
  else if (typeof value === 'string' && DURATION.test(value.trim())) {
    let total = 0;
    for (const [, amount, unit] of value.trim().matchAll(PART))
      total += Number(amount) * (UNIT_MS[unit ?? ''] ?? 0);
    if (total <= 0) return { ok: false, reason: 'a duration longer than zero' };
    atMs = nowMs + total;
  } else if (typeof value === 'string' && ISO_TIME.test(value.trim())) atMs = Date.parse(value.trim());
  else return { ok: false, reason: DEADLINE_FORMS };
  if (!Number.isFinite(atMs))
    return { ok: false, reason: `${DEADLINE_FORMS} (this one is not a valid time)` };
  atMs = Math.round(atMs);
  if (atMs <= nowMs) return { ok: false, reason: 'a time in the future' };
  if (atMs - nowMs > MAX_AHEAD_MS) return { ok: false, reason: 'a time within ten years' };
  return { ok: true, atMs };
}
