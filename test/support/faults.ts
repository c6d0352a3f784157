import type { Job } from '@hfq/shared';
import { accountQueueName } from '@hfq/shared/internal';
import type { RequestRecord, Sim } from '@hfq/sim';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { SpawnedRedis } from '../../packages/cli/src/local-redis.js';

/**
 * Helpers of the fault tests. Each fault test file spawns a Redis of its own, whatever
 * REDIS_URL says: the tests kill it, restart it and cut its connections.
 */

/** A redis-server of the test file's own (AOF on when the test restarts it). */
export function ownRedis(options: { appendOnly?: boolean } = {}): Promise<SpawnedRedis> {
  return SpawnedRedis.start(options);
}

/**
 * One model per job, registered in the simulator, so that its request log tells which job each
 * upstream request served (`record.model`) and re-deliveries show up as repeats. Chat models,
 * served through the router's auto route (no Hub lookup).
 */
export function perJobModels(sim: Sim, label: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const id = `faults/${label}-${i}`;
    sim.setModel(id, { providers: { together: { task: 'conversational' } } });
    return id;
  });
}

export type ChatJob = Extract<Job, { task: 'chat-completion' }>;

export function chatFor(account: string, model: string): ChatJob {
  return {
    account,
    task: 'chat-completion',
    model,
    messages: [{ role: 'user', content: `prompt for ${model}` }],
    parameters: { max_tokens: 16 },
  };
}

/** The text of a chat answer, to compare with the simulator's `expectedChatContent`. */
export function chatContent(output: unknown): string | undefined {
  return (output as { choices?: { message?: { content?: string } }[] }).choices?.[0]?.message?.content;
}

/** Inference requests (not Hub lookups) the simulator logged for each of `models`. */
export function requestsByModel(sim: Sim, models: readonly string[]): Map<string, RequestRecord[]> {
  const wanted = new Set(models);
  const byModel = new Map<string, RequestRecord[]>(models.map((m) => [m, []]));
  for (const record of sim.requests((r) => r.route !== 'hub' && r.model !== null && wanted.has(r.model))) {
    byModel.get(record.model as string)?.push(record);
  }
  return byModel;
}

/** Upstream requests beyond one per job: the work done twice (at least once: see docs/architecture.md, "Retention and delivery"). */
export function duplicatesOf(byModel: Map<string, RequestRecord[]>): number {
  let extra = 0;
  for (const records of byModel.values()) extra += Math.max(0, records.length - 1);
  return extra;
}

export interface FaultRow {
  fault: string;
  enqueued: number;
  completed: number;
  failed: number;
  duplicated: number;
  notes: string;
}

/** One line of the fault table, in the test output (collected for the README). */
export function reportFault(row: FaultRow): FaultRow {
  console.log(
    `FAULT | ${row.fault} | enqueued ${row.enqueued} | completed ${row.completed} | failed ${row.failed} | duplicated ${row.duplicated} | ${row.notes}`,
  );
  return row;
}

export { waitFor } from './wait.js';

/** A read-only view of an account's queue on the admin connection; close it after use. */
export function accountQueue(admin: Redis, prefix: string, account: string): Queue {
  const queue = new Queue(accountQueueName(account), { connection: admin, prefix });
  queue.on('error', () => {});
  return queue;
}

export async function countsOf(
  queue: Queue,
): Promise<{ completed: number; failed: number; active: number; waiting: number; delayed: number }> {
  const counts = await queue.getJobCounts(
    'completed',
    'failed',
    'active',
    'waiting',
    'delayed',
    'prioritized',
  );
  return {
    completed: counts.completed ?? 0,
    failed: counts.failed ?? 0,
    active: counts.active ?? 0,
    waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
    delayed: counts.delayed ?? 0,
  };
}

/** Lines of a worker process that show it crashed or let a rejection go unhandled. */
export function crashLines(lines: readonly string[]): string[] {
  return lines.filter((l) => /unhandled|uncaught|triggerUncaughtException|^hfq: .*Error/i.test(l));
}
