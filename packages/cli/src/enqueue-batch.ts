import { type Batch, BatchAbandonedError, type Producer } from '@hfq/producer';
import { createAdmin } from '@hfq/worker';
import { withBackpressure } from './enqueue-jobs.js';
import { checkedLine, inputLines } from './enqueue-plan.js';
import { type Run, resultRow } from './enqueue-run.js';
import type { JobLine } from './job-line.js';
import { watchRunState } from './progress-note.js';

/**
 * A batch the CLI started stays open this long for a re-run to resume it after Ctrl-C or a crash;
 * after that it completes with the lines it has (see docs/architecture.md, "Batches are flows").
 */
const CLI_SEAL_TIMEOUT_MS = 6 * 3600_000;

/**
 * The file as one batch: its id derives from the content of its lines (the same content never
 * starts a second batch); added a chunk at a time, results written in input order as they come,
 * each child removed from Redis only once its lines are durably in the output file. A re-run
 * resumes the same batch: it adds what is missing and writes what the output does not hold.
 * Returns how many lines failed.
 */
export async function runBatch(run: Run, producer: Producer, coalesce: number): Promise<number> {
  const { progress, interrupt, plan } = run;
  const batchRef = plan.batchRef;
  const valid = async function* () {
    for await (const { lineNo, parsed } of inputLines(run.file, run.accounts)) {
      const line = checkedLine(parsed, batchRef);
      yield { lineNo, line };
    }
  };
  let first: JobLine | undefined;
  for await (const { line } of valid()) {
    if (line.ok) {
      first = line;
      break;
    }
  }
  if (!first?.ok || batchRef === undefined) return 0;
  const job = first.job;
  const batchId = plan.batchId;
  async function* items() {
    for await (const { line } of valid()) {
      if (!line.ok) continue;
      yield line.job.task === 'chat-completion' ? line.job.messages : line.job.inputs;
    }
  }
  let batch: Batch;
  let abandoned: BatchAbandonedError | undefined;
  try {
    batch = await withBackpressure(run, () =>
      producer.enqueueBatch(
        {
          account: job.account,
          task: job.task,
          model: job.model,
          ...(job.provider !== undefined ? { provider: job.provider } : {}),
          ...(job.parameters !== undefined ? { parameters: job.parameters } : {}),
          items: items(),
          coalesce,
        },
        { batchId, chunkSize: run.chunkSize, sealTimeoutMs: CLI_SEAL_TIMEOUT_MS, ...run.due },
      ),
    );
  } catch (err) {
    if (!(err instanceof BatchAbandonedError)) throw err;
    // What was added can still be read; the rest of the file never will be, and the summary says so.
    abandoned = err;
    batch = await producer.batch(batchId);
  }
  console.error(`batch ${batch.id} (account ${batch.account})`);
  const show = async () => {
    const p = await batch.progress();
    progress.set({ enqueued: p.total, done: p.ok, failed: p.failed + p.cancelled });
  };
  try {
    if (!run.wait) {
      await interrupt.race(batch.enqueued());
      if (!interrupt.interrupted) {
        await show();
        progress.finish();
      }
      return 0;
    }
    const poll = setInterval(() => void show().catch(() => {}), 500);
    // Held, credits out, no live worker: on the progress line (progress-note.ts).
    const admin = createAdmin({ connection: run.connection, prefix: run.prefix });
    const stopNote = watchRunState(admin, () => [job.account], progress);
    let failed = plan.keptFailed;
    // The kept rows are the input's first lines (checked before the run): the batch's first items.
    const skip = plan.keptValid;
    let written = skip;
    try {
      const lines = valid();
      const results = run.results;
      const stop = new AbortController();
      void interrupt.promise.then(() => stop.abort(new Error('interrupted')));
      const stream = batch.stream({
        skipItems: skip,
        signal: stop.signal,
        ...(results ? { beforeRemove: () => results.sync() } : {}),
      });
      /** The next valid line not held; the invalid ones before it get their rows. */
      const nextValid = async () => {
        for (;;) {
          const next = await lines.next();
          if (next.done) return undefined;
          const { lineNo, line } = next.value;
          if (plan.keptLines.has(lineNo)) continue;
          if (line.ok) return { lineNo, line };
          await results?.append(
            resultRow(lineNo, line, { ok: false, error: `invalid: ${line.error}` }, batch.id),
          );
        }
      };
      for (;;) {
        const step = await interrupt.race(stream.next());
        if (step === undefined) {
          // Interrupted: what was written is synced on the way out; unread children stay in Redis.
          await stream.return(undefined).catch(() => {});
          return failed;
        }
        if (step.done) break;
        const at = await nextValid();
        if (!step.value.ok) failed++;
        written++;
        if (at) await results?.append(resultRow(at.lineNo, at.line, step.value, batch.id));
      }
      // Invalid lines after the last item.
      await nextValid();
      if (!abandoned)
        await batch.enqueued().catch((err: unknown) => {
          if (err instanceof BatchAbandonedError) abandoned = err;
          else throw err;
        });
      await show();
    } finally {
      clearInterval(poll);
      stopNote();
      await admin.close();
    }
    if (abandoned) {
      const notRun = plan.valid - written;
      progress.finish();
      console.error(`${abandoned.message}`);
      console.error(`${notRun} line(s) of ${run.file} were not run; enqueue them as a new file`);
      return failed + notRun;
    }
    return failed;
  } finally {
    if (interrupt.interrupted) await batch.detach();
  }
}
