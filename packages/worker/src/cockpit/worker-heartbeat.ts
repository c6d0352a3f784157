import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { REGISTRY_TAG, stateKey } from '@hfq/shared/internal';
import type { Cluster, Redis } from 'ioredis';

/**
 * Live workers: each worker process writes a heartbeat (who, where, which accounts, how busy)
 * every `intervalMs` into one hash for the prefix; a reader counts as live those seen within
 * `LIVE_AFTER_INTERVALS` intervals. Writers drop entries older than the hash's TTL, so the hash
 * stays as small as the fleet; with no worker left it expires on its own.
 */
export interface WorkerHeartbeatInfo {
  id: string;
  host: string;
  pid: number;
  version: string;
  startedAtMs: number;
  seenAtMs: number;
  intervalMs: number;
  concurrency: number;
  /** Jobs this process is running now, all accounts. */
  inFlight: number;
  accounts: string[];
  /** BullMQ worker ids of this process: lock tokens of the jobs it runs start with one of them. */
  bullWorkerIds: string[];
}

/** A worker is live while its last heartbeat is younger than this many intervals. */
export const LIVE_AFTER_INTERVALS = 3;
/** Lifetime of the heartbeat hash, refreshed on every heartbeat; older entries are dropped. */
export const HEARTBEATS_TTL_SECONDS = 600;

export function heartbeatsKey(prefix: string): string {
  return stateKey(prefix, REGISTRY_TAG, 'workers');
}

const require = createRequire(import.meta.url);
/** src/cockpit and dist/cockpit are both two levels below the package root. */
export const WORKER_VERSION = (require('../../package.json') as { version: string }).version;

export function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

export async function writeHeartbeat(redis: Redis | Cluster, prefix: string, info: WorkerHeartbeatInfo) {
  const key = heartbeatsKey(prefix);
  await redis.multi().hset(key, info.id, JSON.stringify(info)).expire(key, HEARTBEATS_TTL_SECONDS).exec();
}

export async function removeHeartbeat(redis: Redis | Cluster, prefix: string, id: string): Promise<void> {
  await redis.hdel(heartbeatsKey(prefix), id);
}

/** Every heartbeat in the hash, newest first, with `live` computed at `nowMs`. */
export async function readHeartbeats(
  redis: Pick<Redis | Cluster, 'hgetall'>,
  prefix: string,
  nowMs: number,
): Promise<(WorkerHeartbeatInfo & { live: boolean })[]> {
  const raw = await redis.hgetall(heartbeatsKey(prefix));
  const out: (WorkerHeartbeatInfo & { live: boolean })[] = [];
  for (const json of Object.values(raw)) {
    try {
      const info = JSON.parse(json) as WorkerHeartbeatInfo;
      out.push({ ...info, live: nowMs - info.seenAtMs <= info.intervalMs * LIVE_AFTER_INTERVALS });
    } catch {
      // not ours: skipped
    }
  }
  return out.sort((a, b) => b.seenAtMs - a.seenAtMs);
}

/** Drops entries not refreshed for the hash's whole TTL (workers that died long ago). */
export async function pruneHeartbeats(redis: Redis | Cluster, prefix: string, nowMs: number): Promise<void> {
  const stale = (await readHeartbeats(redis, prefix, nowMs))
    .filter((w) => nowMs - w.seenAtMs > HEARTBEATS_TTL_SECONDS * 1000)
    .map((w) => w.id);
  if (stale.length > 0) await redis.hdel(heartbeatsKey(prefix), ...stale);
}
