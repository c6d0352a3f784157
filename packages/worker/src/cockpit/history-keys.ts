import { hashTag, stateKey } from '@hfq/shared/internal';

/**
 * The cockpit's history: per account, one Redis hash per hour, one field per 10-second bucket and
 * series (`<seconds into the hour>:<series>`). Workers add their counts once per flush
 * (HINCRBY, summed over every process) and write the gauges they sampled (HSET, the same
 * cluster-wide value from every process); readers fetch the hour hashes a chart covers. No scan:
 * every key a reader needs is computed from the account and the clock.
 */

export const HISTORY_BUCKET_MS = 10_000;
const HOUR_MS = 3_600_000;
/** Kept a day and an hour: the board shows up to 24 hours. */
export const HISTORY_TTL_SECONDS = 25 * 3600;
export const HISTORY_MAX_HOURS = 24;

/** Counters: summed over processes. */
export const COUNTERS = {
  completed: 'c',
  failed: 'f',
  ok: 'ok',
  throttled: '429',
  credits: '402',
  error: 'err',
} as const;

/** Gauges: sampled from the shared state, last write wins. */
export const GAUGES = {
  learnedRate: 'lr',
  configuredRate: 'cr',
  /** An operator's override (`hfq limit`) while one is in force. */
  overrideRate: 'ov',
  backlog: 'q',
  spendHf: 'sh',
  spendKeys: 'sk',
} as const;

export type CounterName = keyof typeof COUNTERS;
export type GaugeName = keyof typeof GAUGES;

export function hourStart(ms: number): number {
  return ms - (ms % HOUR_MS);
}

export function historyKey(prefix: string, accountId: string, hourStartMs: number): string {
  return stateKey(prefix, 'history', hashTag(accountId), String(hourStartMs / 1000));
}

/** `<seconds into the hour of the bucket>:<series>`. */
export function historyField(ms: number, code: string): string {
  const bucket = ms - (ms % HISTORY_BUCKET_MS);
  return `${(bucket - hourStart(ms)) / 1000}:${code}`;
}

/** Hour starts covering [fromMs, toMs]. */
export function hoursBetween(fromMs: number, toMs: number): number[] {
  const hours: number[] = [];
  for (let h = hourStart(fromMs); h <= toMs; h += HOUR_MS) hours.push(h);
  return hours;
}
