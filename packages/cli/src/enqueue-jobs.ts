import { NoHeadroomError, type Producer } from '@hfq/producer';
import type { Job } from '@hfq/shared';
import {
  accountQueueName,
  checkRedisTarget,
  connectionFor,
  isConnectionLost,
  sleep,
} from '@hfq/shared/internal';
import { createAdmin } from '@hfq/worker';
import { Job as BullJob, Queue } from 'bullmq';
import { lineJobId } from './content-id.js';
import { checkedLine, inputLines } from './enqueue-plan.js';
import { type Run, resultRow } from './enqueue-run.js';
import type { JobLine } from './job-line.js';
import { watchRunState } from './progress-note.js';
import { cliRedisLog } from './redis-outage-log.js';

/** Errors of a connection that is gone for now (ioredis, sockets): a wait is tried again. */
/** Results waited for at once: bounds memory; each is written as soon as it is ready. */
const RESULT_WINDOW = 1_000;

type Outcome = Awaited<ReturnType<ReturnType<Producer['job']>['outcome']>>;

interface ToAdd {
  lineNo: number;
  job: Job;
  id: string;
}

/**
 * Single jobs: the lines `--out` does not hold are added chunk after chunk (a job id from each
 * line's content: a job already queued, running or retained is not added again), and, with
 * --wait, their results are read a window at a time and written as each finishes. Invalid lines
 * (--skip-invalid) get their error row. Returns how many jobs failed (kept rows included).
 */
export async function runJobs(run: Run, producer: Producer): Promise<number> {
  const { progress, interrupt, plan } = run;
  const redis = connectionFor(run.connection, 'producer', `${run.prefix}:hfq-cli`);
  redis.on('error', () => {});
  // A Redis that refuses from the start is a configuration error (one line, naming REDIS_URL);
  // after that, an outage is one line per condition, and one when it is ready again.
  await checkRedisTarget(redis, run.connection, 5_000).catch(async (err: unknown) => {
    redis.disconnect();
    throw err;
  });
  cliRedisLog((line) => progress.print(line)).watch(redis, 'enqueue');
  const queues = new Map<string, Queue>();
  const queueOf = (account: string) => {
    let q = queues.get(account);
    if (!q) {
      q = new Queue(accountQueueName(account), { connection: redis, prefix: run.prefix });
      // Its errors are the connection's, reported above; failed calls reject.
      q.on('error', () => {});
      queues.set(account, q);
    }
    return q;
  };
  const accounts = new Set<string>();
  let added = 0;
  let fresh = 0;
  let addError: unknown;
  let wake: () => void = () => {};
  const addedMore = () => new Promise<void>((r) => (wake = r));
  const lineId = (lineNo: number, job: Job) => lineJobId(job, run.eachLine ? lineNo : undefined);

  /** Which of `ids` (one account's) have no job yet: counted as new, so a re-run can say it adds nothing. */
  const countNew = async (account: string, ids: string[]) => {
    const q = queueOf(account);
    const pipeline = redis.pipeline();
    for (const id of new Set(ids)) pipeline.exists(q.toKey(id));
    const answers = (await pipeline.exec()) ?? [];
    return answers.filter(([, n]) => n === 0).length;
  };
  /** `hfq retry`: a failed job of these lines runs again (a job that is gone is added anew). */
  const retryFailed = async (account: string, ids: string[]) => {
    const q = queueOf(account);
    for (const id of new Set(ids)) {
      const job = await BullJob.fromId(q, id);
      if (job && (await job.isFailed())) await job.retry('failed');
    }
  };

  const addAll = async () => {
    let chunk: ToAdd[] = [];
    const flush = async () => {
      if (chunk.length === 0) return;
      const lines = chunk;
      chunk = [];
      const byAccount = new Map<string, string[]>();
      for (const l of lines) {
        const ids = byAccount.get(l.job.account);
        if (ids) ids.push(l.id);
        else byAccount.set(l.job.account, [l.id]);
      }
      for (const [account, ids] of byAccount) fresh += await countNew(account, ids);
      await withBackpressure(run, () =>
        producer.enqueueMany(lines.map((l) => ({ job: l.job, options: { jobId: l.id, ...run.due } }))),
      );
      if (run.retryFailed) for (const [account, ids] of byAccount) await retryFailed(account, ids);
      for (const l of lines) accounts.add(l.job.account);
      added += lines.length;
      progress.enqueued(lines.length);
      wake();
    };
    for await (const { lineNo, parsed } of inputLines(run.file, run.accounts, { hash: false })) {
      if (interrupt.interrupted) return;
      if (plan.keptLines.has(lineNo) || !parsed.ok) continue;
      chunk.push({ lineNo, job: parsed.job, id: lineId(lineNo, parsed.job) });
      if (chunk.length >= run.chunkSize) await flush();
    }
    await flush();
  };
  const adding = addAll().catch((err: unknown) => {
    addError = err;
    wake();
  });
  const closeAll = async () => {
    await Promise.all([...queues.values()].map((q) => q.close()));
    await redis.quit().catch(() => redis.disconnect());
  };
  if (!run.wait) {
    try {
      await interrupt.race(adding);
      if (addError) throw addError;
      if (!interrupt.interrupted) console.error(addedText(added, fresh));
      return 0;
    } finally {
      await closeAll();
    }
  }

  const started = Date.now();
  let failed = plan.keptFailed;
  // Held, credits out, no live worker: on the progress line (progress-note.ts).
  const admin = createAdmin({ connection: run.connection, prefix: run.prefix });
  const stopNote = watchRunState(admin, () => [...accounts], progress);
  const pending = new Set<Promise<void>>();
  /** A job's outcome; a wait cut by a lost connection waits again once Redis is back (the log says so). */
  const outcomeOf = async (id: string, account: string): Promise<Outcome> => {
    for (let waitMs = 500; ; waitMs = Math.min(waitMs * 2, 5_000)) {
      try {
        return await producer.job(id, account).outcome();
      } catch (err) {
        if (interrupt.interrupted || !isConnectionLost(err)) throw err;
        await interrupt.race(sleep(waitMs));
      }
    }
  };
  const watch = (lineNo: number, line: JobLine & { ok: true }) => {
    const done: Promise<void> = outcomeOf(lineId(lineNo, line.job), line.job.account)
      .then(async (o: Outcome) => {
        progress.done(o.ok, o.finishedOn >= started);
        if (!o.ok) failed++;
        await run.results?.append(
          resultRow(
            lineNo,
            line,
            o.ok
              ? {
                  ok: true,
                  output: o.result.output,
                  provider: o.result.provider,
                  route: o.result.route,
                  costUsd: o.result.costUsd,
                }
              : { ok: false, error: o.error },
          ),
        );
      })
      .finally(() => pending.delete(done));
    pending.add(done);
  };
  try {
    let index = 0;
    for await (const { lineNo, parsed } of inputLines(run.file, run.accounts)) {
      if (plan.keptLines.has(lineNo)) continue;
      const line = checkedLine(parsed, undefined);
      if (!line.ok) {
        await run.results?.append(resultRow(lineNo, line, { ok: false, error: `invalid: ${line.error}` }));
        continue;
      }
      index++;
      // Read only what is added; the adding goes on meanwhile.
      while (added < index && !addError && !interrupt.interrupted) await interrupt.race(addedMore());
      if (addError) throw addError;
      if (interrupt.interrupted) return failed;
      watch(lineNo, line);
      while (pending.size >= RESULT_WINDOW) {
        await interrupt.race(Promise.race(pending));
        if (interrupt.interrupted) return failed;
      }
    }
    while (pending.size > 0) {
      await interrupt.race(Promise.race(pending));
      if (interrupt.interrupted) return failed;
    }
    await adding;
    if (addError) throw addError;
    if (fresh === 0 && added > 0) console.error(addedText(added, fresh));
    return failed;
  } finally {
    stopNote();
    await admin.close();
    if (!interrupt.interrupted) await closeAll();
  }
}

function addedText(added: number, fresh: number): string {
  if (added === 0) return 'nothing to enqueue: the output holds every line';
  if (fresh === 0) return `nothing new: all ${added} job(s) of this file are already queued or done`;
  return `enqueued ${fresh} new job(s)${fresh < added ? `; ${added - fresh} line(s) share a job already queued or done` : ''}`;
}

/**
 * Redis is near full: the producer refuses new work so that workers can always drain. Wait for
 * them, saying so on the progress line, and try again; an interrupt stops the wait.
 */
export async function withBackpressure<T>(run: Run, add: () => Promise<T>): Promise<T> {
  for (let waitMs = 1_000; ; waitMs = Math.min(waitMs * 2, 15_000)) {
    try {
      const result = await add();
      run.progress.setNote('');
      return result;
    } catch (err) {
      if (!(err instanceof NoHeadroomError) || run.interrupt.interrupted) throw err;
      run.progress.setNote(`waiting for Redis headroom: ${err.message}`);
      await run.interrupt.race(sleep(waitMs));
      if (run.interrupt.interrupted) throw err;
    }
  }
}
