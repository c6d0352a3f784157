import { type LaneId, laneQueueName, operatorPauseKey, ROUTER_LANE } from '@hfq/shared/internal';
import { holdKey } from '@hfq/worker/internal';
import { parseCommand, UsageError } from '../usage.js';
import { openAccountQueue } from './account-queue.js';

export const QUEUE_HELP = `Usage: hfq queue <pause|resume|clean|drain> <account> [--yes]

Operator actions on an account's queue (needs only REDIS_URL and HFQ_PREFIX):
  pause    stop starting the account's jobs on every worker (running ones finish); it stays
           paused until "hfq queue resume", whatever else happens
  resume   lift an operator's pause (a hold of hfq's own, credits out and the like, stays until
           its cause clears: "hfq status" says why)
  clean    remove the account's finished jobs (completed and failed) and their results  [--yes]
  drain    remove the account's waiting and delayed jobs, which then never run          [--yes]
  --yes    do it: without it, clean and drain only say what they would remove`;

const OPTIONS = { yes: { type: 'boolean' } } as const;
const ACTIONS = ['pause', 'resume', 'clean', 'drain'] as const;

export async function runQueue(env: NodeJS.ProcessEnv, argv: string[]): Promise<void> {
  const { values, positionals } = parseCommand(argv, OPTIONS, QUEUE_HELP, ['action', 'account']);
  const [action, account] = positionals;
  if (!action) throw new UsageError(`missing <action> (${ACTIONS.join(', ')})`, QUEUE_HELP);
  if (!(ACTIONS as readonly string[]).includes(action))
    throw new UsageError(`unknown action "${action}" (${ACTIONS.join(', ')})`, QUEUE_HELP);
  if (!account) throw new UsageError('missing <account>', QUEUE_HELP);
  const { queues, redis, prefix, close } = await openAccountQueue(env, account, QUEUE_HELP);
  try {
    if (action === 'pause') {
      await redis.set(operatorPauseKey(prefix, account), new Date().toISOString());
      for (const queue of queues) await queue.pause();
      console.log(`${account}: paused (until "hfq queue resume ${account}")`);
      return;
    }
    if (action === 'resume') {
      const wasPaused = (await redis.del(operatorPauseKey(prefix, account))) === 1;
      // Each lane resumes unless hfq holds it (its hold lifts when its cause clears).
      const held: string[] = [];
      for (const queue of queues) {
        const lane = laneOfQueue(account, queue.name);
        const reason = await redis.get(holdKey(prefix, account, lane));
        if (reason === null) await queue.resume();
        else held.push(queues.length > 1 ? `lane ${lane}: ${reason}` : reason);
      }
      if (held.length > 0) {
        console.log(
          `${account}: ${wasPaused ? 'operator pause lifted; ' : ''}still held by hfq: ${held.join('; ')}`,
        );
        return;
      }
      console.log(`${account}: ${wasPaused ? 'resumed' : 'was not paused by an operator; running'}`);
      return;
    }
    const counts: Record<string, number> = {};
    for (const queue of queues) {
      const c = await queue.getJobCounts('completed', 'failed', 'waiting', 'prioritized', 'delayed');
      for (const [k, v] of Object.entries(c)) counts[k] = (counts[k] ?? 0) + v;
    }
    const removes =
      action === 'clean'
        ? `${counts.completed ?? 0} completed and ${counts.failed ?? 0} failed job(s)`
        : `${(counts.waiting ?? 0) + (counts.prioritized ?? 0)} waiting and ${counts.delayed ?? 0} delayed job(s)`;
    if (!values.yes) {
      throw new UsageError(
        `queue ${action} would remove ${removes} of ${account}, for good: add --yes to do it`,
        QUEUE_HELP,
      );
    }
    if (action === 'clean') {
      let removed = 0;
      for (const queue of queues)
        removed += [...(await cleanAll(queue, 'completed')), ...(await cleanAll(queue, 'failed'))].length;
      console.log(`${account}: removed ${removed} finished job(s)`);
    } else {
      for (const queue of queues) await queue.drain(true);
      console.log(`${account}: removed ${removes}`);
    }
  } finally {
    await close();
  }
}

/** Every finished job of one kind, a thousand per round trip. */
/** The lane of one of the account's queues, from its name (the router lane is the account queue). */
function laneOfQueue(account: string, queueName: string): LaneId {
  const base = laneQueueName(account, ROUTER_LANE);
  return queueName === base ? ROUTER_LANE : queueName.slice(base.length + 1);
}

async function cleanAll(
  queue: Awaited<ReturnType<typeof openAccountQueue>>['queues'][number],
  kind: 'completed' | 'failed',
): Promise<string[]> {
  const removed: string[] = [];
  for (;;) {
    const ids = await queue.clean(0, 1000, kind);
    removed.push(...ids);
    if (ids.length < 1000) return removed;
  }
}
