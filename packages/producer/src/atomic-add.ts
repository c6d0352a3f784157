import { Job as BullJob, type JobsOptions, type Queue } from 'bullmq';
import type { ChainableCommander, Redis } from 'ioredis';

/**
 * Adding several jobs in one MULTI/EXEC: all of them or none, together with any bookkeeping
 * commands the caller appends (a batch's layout entry). BullMQ's own `addBulk` sends its adds as
 * a pipeline, so a dropped connection or a crash can leave some of them added and others not.
 */

export interface AtomicEntry {
  /** The queue of this entry when not `queue` (another lane of the same account: same hash tag). */
  queue?: Queue;
  name: string;
  data: unknown;
  opts: JobsOptions;
}

/** BullMQ's add scripts answer a negative code when they refuse a job (a missing or finished parent). */
const ADD_ERRORS: Record<number, string> = {
  [-5]: 'the parent job is missing',
  [-6]: 'the parent job has finished already',
};

/**
 * Add `entries` to `queue` (or each entry's own lane queue of the account) and run `extra` on the same transaction; resolves with the job ids.
 * An entry whose id exists already is left as it is (BullMQ's rule), so a retry is safe.
 */
export async function addAtomically(
  queue: Queue,
  entries: readonly AtomicEntry[],
  extra?: (multi: ChainableCommander) => void,
): Promise<string[]> {
  const client = (await queue.getBackend().client) as unknown as Redis;
  const multi = client.multi();
  const jobs = entries.map(
    (entry) => new BullJob(entry.queue ?? queue, entry.name, entry.data, entry.opts, entry.opts.jobId),
  );
  for (const job of jobs) {
    const parentOpts = job.parentKey
      ? { parentKey: job.parentKey, parentDependenciesKey: `${job.parentKey}:dependencies` }
      : {};
    // Queued on the transaction synchronously; the promise settles with the transaction object.
    void job.addJob(multi as never, parentOpts).catch(() => {});
  }
  extra?.(multi);
  const replies = await multi.exec();
  if (!replies) throw new Error('Redis discarded the transaction');
  const ids: string[] = [];
  replies.forEach(([err, reply], i) => {
    if (err) throw err;
    if (i >= jobs.length) return;
    if (typeof reply === 'number' && reply < 0) {
      throw new Error(`job ${jobs[i]?.id} not added: ${ADD_ERRORS[reply] ?? `BullMQ code ${reply}`}`);
    }
    ids.push(String(reply));
  });
  return ids;
}
