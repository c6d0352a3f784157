/**
 * Parking (see docs/architecture.md, "Deadlines and the batch route"): a job with a deadline and
 * preference `cost` whose task a provider batch API can run is added delayed, so that the
 * worker's batch planner sees it before real time takes it. The producer cannot know the
 * account's keys or its learned capacity, so the delay is only a planning window: short enough
 * that a job nobody plans (no worker with the batch route, no key with a batch API) runs in real
 * time at once after it, long enough for a few planner rounds.
 */
import type { Job } from './job-schema.js';

/** The batch endpoints hfq uses, by task; other tasks have no batch route. */
export const BATCH_ENDPOINT_BY_TASK: Partial<Record<Job['task'], string>> = {
  'chat-completion': '/v1/chat/completions',
  'feature-extraction': '/v1/embeddings',
};

/** The planning window of a parked job: at most this long. */
export const PARKING_WINDOW_MS = 30_000;

/**
 * How long a job waits parked: the planning window, at most a fifth of the time to its deadline
 * (a near deadline leaves the planner less); undefined for a job that is not parked.
 */
export function parkingDelayMs(
  job: Job,
  due: { dueAt?: number | undefined; preference?: 'cost' | 'speed' | undefined },
  nowMs: number,
): number | undefined {
  if (due.dueAt === undefined || due.preference !== 'cost') return undefined;
  if (BATCH_ENDPOINT_BY_TASK[job.task] === undefined) return undefined;
  const left = due.dueAt - nowMs;
  if (left <= 0) return undefined;
  return Math.min(PARKING_WINDOW_MS, Math.floor(left / 5));
}
