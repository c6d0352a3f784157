import type { Cluster, Redis } from 'ioredis';
import {
  COUNTERS,
  GAUGES,
  HISTORY_BUCKET_MS,
  HISTORY_MAX_HOURS,
  historyField,
  historyKey,
  hourStart,
  hoursBetween,
} from './history-keys.js';

/** One 10-second bucket of an account's history. Counters are counts in the bucket. */
export interface HistoryPoint {
  /** Bucket start, ms since the epoch. */
  t: number;
  completed: number;
  failed: number;
  ok: number;
  throttled: number;
  credits: number;
  error: number;
  learnedRate: number | null;
  configuredRate: number | null;
  /** An operator's override in force in this bucket, else null. */
  overrideRate: number | null;
  backlog: number | null;
  spendHf: number | null;
  spendKeys: number | null;
}

const COUNTER_CODES = Object.entries(COUNTERS) as [keyof typeof COUNTERS, string][];
const GAUGE_CODES = Object.entries(GAUGES) as [keyof typeof GAUGES, string][];

/** The account's buckets from `nowMs - hours` to now, oldest first, only those with data. */
export async function readHistory(
  redis: Pick<Redis | Cluster, 'hgetall'>,
  prefix: string,
  accountId: string,
  nowMs: number,
  hours = 1,
): Promise<HistoryPoint[]> {
  const span = Math.min(Math.max(hours, 1 / 60), HISTORY_MAX_HOURS) * 3_600_000;
  const fromMs = nowMs - span;
  const hourStarts = hoursBetween(fromMs, nowMs);
  const hashes = await Promise.all(hourStarts.map((h) => redis.hgetall(historyKey(prefix, accountId, h))));
  const byT = new Map<number, HistoryPoint>();
  hashes.forEach((fields, i) => {
    const hour = hourStarts[i] as number;
    for (const [field, value] of Object.entries(fields)) {
      const colon = field.indexOf(':');
      const t = hour + Number(field.slice(0, colon)) * 1000;
      if (!Number.isFinite(t) || t < fromMs - HISTORY_BUCKET_MS || t > nowMs) continue;
      const code = field.slice(colon + 1);
      const point = byT.get(t) ?? emptyPoint(t);
      const counter = COUNTER_CODES.find(([, c]) => c === code);
      const gauge = GAUGE_CODES.find(([, c]) => c === code);
      if (counter) point[counter[0]] = Number(value);
      else if (gauge) point[gauge[0]] = Number(value);
      else continue;
      byT.set(t, point);
    }
  });
  return [...byT.values()].sort((a, b) => a.t - b.t);
}

function emptyPoint(t: number): HistoryPoint {
  return {
    t,
    completed: 0,
    failed: 0,
    ok: 0,
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

/**
 * Only what the forecast needs (completions and successful requests of the last `windowMs`),
 * read field by field (HMGET) rather than whole hour hashes: `status` runs on every scrape.
 */
export async function readRecentThroughput(
  redis: Pick<Redis | Cluster, 'hmget'>,
  prefix: string,
  accountId: string,
  nowMs: number,
  windowMs: number,
): Promise<HistoryPoint[]> {
  const byHour = new Map<number, number[]>();
  const first = nowMs - windowMs - ((nowMs - windowMs) % HISTORY_BUCKET_MS);
  for (let t = first; t <= nowMs; t += HISTORY_BUCKET_MS) {
    const hour = hourStart(t);
    byHour.set(hour, [...(byHour.get(hour) ?? []), t]);
  }
  const points: HistoryPoint[] = [];
  await Promise.all(
    [...byHour].map(async ([hour, buckets]) => {
      const fields = buckets.flatMap((t) => [
        historyField(t, COUNTERS.completed),
        historyField(t, COUNTERS.ok),
      ]);
      const values = await redis.hmget(historyKey(prefix, accountId, hour), ...fields);
      buckets.forEach((t, i) => {
        const completed = Number(values[2 * i] ?? 0);
        const ok = Number(values[2 * i + 1] ?? 0);
        if (completed > 0 || ok > 0) points.push({ ...emptyPoint(t), completed, ok });
      });
    }),
  );
  return points.sort((a, b) => a.t - b.t);
}
