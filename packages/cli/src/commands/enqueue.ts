import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import {
  type Batch,
  BatchAbandonedError,
  createProducer,
  type JobHandle,
  NoHeadroomError,
  type Producer,
} from '@hfq/producer';
import { type Connection, JOB, type Job, LIMITS, ValidationError } from '@hfq/shared';
import { loadConnectionConfig, sleep } from '@hfq/shared/internal';
import { createAdmin } from '@hfq/worker';
import { readInputLines } from '../input-lines.js';
import { Interrupt } from '../interrupt.js';
import { Progress } from '../progress.js';
import { watchRunState } from '../progress-note.js';
import { ResultsFile } from '../results-file.js';
import { parseCommand, UsageError, wholeOption } from '../usage.js';

export const ENQUEUE_HELP = `Usage: hfq enqueue <file.jsonl> [--account A] [--wait] [--out results.jsonl] [--skip-invalid] [--chunk N]
                           [--batch [--coalesce N]]

Enqueues one job per line. The whole file is validated first: a bad line is reported with its
line number and field, and nothing is enqueued unless --skip-invalid is given. Job ids derive
from the file's content and line number, so running the same file twice adds nothing twice.
  --account A      set the account of every line (else each line names its own)
  --wait           enqueue the whole file, then wait for every result, with progress; exits 1
                   if any job failed (the last line says how many)
  --out FILE       write results in input order as JSONL (implies --wait). Re-running the same
                   command (after Ctrl-C or a crash) keeps what FILE holds and adds the rest
  --skip-invalid   enqueue the valid lines, report the others
  --chunk N        lines per round trip to Redis, 1 to 10000 (default 1000)
  --batch          enqueue the lines as one batch: a flow whose items run after single jobs, read back
                   in input order with per-line errors, removed from Redis once durably written; every
                   line has the same account, task, model, provider and parameters; the batch id
                   derives from the file, so running it again resumes the same batch
  --coalesce N     with --batch: inputs per upstream request (feature-extraction, sentence-similarity)`;

const OPTIONS = {
  account: { type: 'string' },
  wait: { type: 'boolean' },
  out: { type: 'string' },
  'skip-invalid': { type: 'boolean' },
  chunk: { type: 'string' },
  batch: { type: 'boolean' },
  coalesce: { type: 'string' },
} as const;

/**
 * A batch the CLI started stays open this long for a re-run to resume it after Ctrl-C or a crash;
 * after that it completes with the lines it has (see docs/architecture.md, "Batches are flows").
 */
const CLI_SEAL_TIMEOUT_MS = 6 * 3600_000;
/** Results waited for ahead of the one being written: bounds memory, keeps the output in order. */
const RESULT_WINDOW = 1_000;

interface ValidLine {
  lineNo: number;
  job: Job;
}

function parseLine(text: string, account: string | undefined): unknown {
  const value = JSON.parse(text) as Record<string, unknown>;
  return account !== undefined && value && typeof value === 'object' && !Array.isArray(value)
    ? { ...value, account }
    : value;
}

/** The valid lines, in order, as the first pass decided (the same filter every pass). */
async function* validLines(path: string, account: string | undefined, batchRef: string | undefined) {
  for await (const line of readInputLines(path)) {
    if (line.text === undefined) continue;
    let parsed: ReturnType<typeof JOB.safeParse>;
    try {
      parsed = JOB.safeParse(parseLine(line.text, account));
    } catch {
      continue;
    }
    if (!parsed.success) continue;
    if (batchRef !== undefined && batchMismatch(parsed.data, batchRef)) continue;
    yield { lineNo: line.lineNo, job: parsed.data } satisfies ValidLine;
  }
}

/** First pass, constant memory: validate every line, hash the file (for idempotent job ids), and
 * check that an existing output file holds results of this input's first valid lines. */
async function validateFile(path: string, account: string | undefined, batch: boolean, held: number[]) {
  const hash = createHash('sha256');
  const bad: string[] = [];
  let valid = 0;
  let batchRef: string | undefined;
  let heldMismatch: string | undefined;
  for await (const line of readInputLines(path)) {
    if (line.text === undefined) {
      bad.push(`line ${line.lineNo}: ${line.problem}`);
      continue;
    }
    hash.update(`${line.lineNo}\n${line.text}\n`);
    try {
      const result = JOB.safeParse(parseLine(line.text, account));
      // --batch: every line must share what a batch shares (the first valid line sets it).
      if (batch && result.success) batchRef ??= batchKey(result.data);
      const mismatch =
        batchRef !== undefined && result.success ? batchMismatch(result.data, batchRef) : undefined;
      if (mismatch) bad.push(`line ${line.lineNo}: ${mismatch}`);
      else if (result.success) {
        if (valid < held.length && held[valid] !== line.lineNo) {
          heldMismatch ??= `its result ${valid + 1} is for line ${held[valid]}, the input's is line ${line.lineNo}`;
        }
        valid++;
      } else {
        const issue = result.error.issues[0];
        bad.push(`line ${line.lineNo}: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
      }
    } catch (err) {
      bad.push(`line ${line.lineNo}: not JSON (${(err as Error).message})`);
    }
  }
  if (held.length > valid)
    heldMismatch ??= `it holds ${held.length} results, the input has ${valid} valid lines`;
  return { valid, bad, fileId: hash.digest('hex').slice(0, 12), batchRef, heldMismatch };
}

export async function runEnqueue(env: NodeJS.ProcessEnv, argv: string[]): Promise<void> {
  const { values, positionals } = parseCommand(argv, OPTIONS, ENQUEUE_HELP, ['file.jsonl']);
  const file = positionals[0];
  if (!file) throw new UsageError('missing <file.jsonl>', ENQUEUE_HELP);
  const chunkSize = wholeOption(values.chunk, 'chunk', 1, 10_000, 1_000, ENQUEUE_HELP);
  if (values.coalesce !== undefined && !values.batch)
    throw new UsageError('--coalesce applies only with --batch', ENQUEUE_HELP);
  const coalesce = wholeOption(values.coalesce, 'coalesce', 1, LIMITS.MAX_INPUT_ITEMS, 1, ENQUEUE_HELP);
  const fileStat = await stat(file).catch(() => undefined);
  if (!fileStat?.isFile()) throw new UsageError(`${file}: no such file`, ENQUEUE_HELP);
  const config = loadConnectionConfig(env);
  const wait = values.wait === true || values.out !== undefined;

  // The output is checked (not the input file, a folder that exists) before anything else.
  const results =
    values.out !== undefined ? await ResultsFile.open(values.out, file, ENQUEUE_HELP) : undefined;
  try {
    const held = results?.heldLines ?? [];
    const { valid, bad, fileId, batchRef, heldMismatch } = await validateFile(
      file,
      values.account,
      values.batch === true,
      held,
    );
    for (const line of bad.slice(0, 50)) console.error(line);
    if (bad.length > 50) console.error(`… and ${bad.length - 50} more invalid lines`);
    if (bad.length > 0 && !values['skip-invalid']) {
      throw new ValidationError('input file', [
        {
          path: file,
          message: `${bad.length} invalid line(s); nothing enqueued (use --skip-invalid to enqueue the rest)`,
        },
      ]);
    }
    if (heldMismatch) {
      throw new UsageError(
        `--out ${values.out} holds results of another input (${heldMismatch}); choose another file`,
        ENQUEUE_HELP,
      );
    }
    if (valid === 0) {
      console.error('nothing to enqueue');
      return;
    }
    const run: Run = {
      file,
      account: values.account,
      out: values.out,
      results,
      valid,
      fileId,
      chunkSize,
      wait,
      interrupt: new Interrupt(),
      progress: new Progress(valid, process.stderr, {
        done: held.length - (results?.heldFailed ?? 0),
        failed: results?.heldFailed ?? 0,
      }),
      connection: config.connection,
      prefix: config.prefix,
    };
    const producer = createProducer({ connection: config.connection, prefix: config.prefix });
    let failed = 0;
    try {
      failed = values.batch
        ? await enqueueBatchFile(run, producer, batchRef, coalesce)
        : await enqueueLines(run, producer);
    } finally {
      if (run.interrupt.interrupted) run.progress.stop();
      run.interrupt.dispose();
      await results?.sync();
      // Interrupted, results still awaited would fail against a closing connection: the process
      // exits below instead, with its output synced and its batch feed (if any) detached.
      if (!run.interrupt.interrupted) await producer.close();
    }
    if (run.interrupt.interrupted) {
      run.progress.clear();
      await results?.close();
      process.stderr.write('\ninterrupted: re-run the same command to resume\n');
      process.exit(130);
    }
    if (!wait) return;
    run.progress.finish();
    console.error(run.progress.summary(values.out));
    if (failed > 0) process.exitCode = 1;
  } finally {
    await results?.close();
  }
}

interface Run {
  file: string;
  account: string | undefined;
  out: string | undefined;
  results: ResultsFile | undefined;
  valid: number;
  fileId: string;
  chunkSize: number;
  wait: boolean;
  interrupt: Interrupt;
  progress: Progress;
  /** Where the run's accounts' state is read for the progress line. */
  connection: Connection;
  prefix: string;
}

type Outcome = Awaited<ReturnType<JobHandle['outcome']>>;

/**
 * Single jobs: the whole file is added chunk after chunk while the results are read, in input
 * order, a window ahead; the lines the output file holds are neither added nor read again.
 * Returns how many jobs failed (those the output file held included).
 */
async function enqueueLines(run: Run, producer: Producer): Promise<number> {
  const { progress, interrupt } = run;
  const skip = run.results?.heldLines.length ?? 0;
  const jobId = (lineNo: number) => `f${run.fileId}-${lineNo}`;
  const accounts = new Set<string>();
  let added = 0;
  let addError: unknown;
  let wake: () => void = () => {};
  const addedMore = () => new Promise<void>((r) => (wake = r));

  const addAll = async () => {
    let chunk: ValidLine[] = [];
    let index = 0;
    const flush = async () => {
      if (chunk.length === 0) return;
      const lines = chunk;
      chunk = [];
      await withBackpressure(run, () =>
        producer.enqueueMany(lines.map((l) => ({ job: l.job, options: { jobId: jobId(l.lineNo) } }))),
      );
      for (const l of lines) accounts.add(l.job.account);
      added += lines.length;
      progress.enqueued(lines.length);
      wake();
    };
    for await (const line of validLines(run.file, run.account, undefined)) {
      if (interrupt.interrupted) return;
      if (index++ < skip) continue;
      chunk.push(line);
      if (chunk.length >= run.chunkSize) await flush();
    }
    await flush();
  };
  const adding = addAll().catch((err: unknown) => {
    addError = err;
    wake();
  });
  if (!run.wait) {
    await interrupt.race(adding);
    if (addError) throw addError;
    if (!interrupt.interrupted) console.error(`enqueued ${added} job(s)`);
    return 0;
  }

  const started = Date.now();
  let failed = run.results?.heldFailed ?? 0;
  // Held, credits out, paused for a stated wait: on the progress line (progress-note.ts).
  const admin = createAdmin({ connection: run.connection, prefix: run.prefix });
  const stopNote = watchRunState(admin, () => [...accounts], progress);
  try {
    const window: { lineNo: number; outcome: Promise<Outcome> }[] = [];
    const write = async (entry: { lineNo: number; outcome: Promise<Outcome> }) => {
      const outcome = await entry.outcome;
      if (!outcome.ok) failed++;
      await run.results?.append(
        outcome.ok
          ? { line: entry.lineNo, ok: true, ...outcome.result }
          : { line: entry.lineNo, ok: false, error: outcome.error },
      );
    };
    let index = 0;
    for await (const line of validLines(run.file, run.account, undefined)) {
      if (index++ < skip) continue;
      // Read only what is added; the adding goes on meanwhile.
      while (added < index - skip && !addError && !interrupt.interrupted) await interrupt.race(addedMore());
      if (addError) throw addError;
      if (interrupt.interrupted) return failed;
      const outcome = producer
        .job(jobId(line.lineNo), line.job.account)
        .outcome()
        .then((o) => {
          progress.done(o.ok, o.finishedOn >= started);
          return o;
        });
      window.push({ lineNo: line.lineNo, outcome });
      while (window.length >= RESULT_WINDOW) {
        const head = window[0] as (typeof window)[number];
        if ((await interrupt.race(head.outcome)) === undefined) return failed;
        window.shift();
        await write(head);
      }
    }
    for (const entry of window) {
      if ((await interrupt.race(entry.outcome)) === undefined) return failed;
      await write(entry);
    }
    await adding;
    if (addError) throw addError;
    return failed;
  } finally {
    stopNote();
    await admin.close();
  }
}

/**
 * Redis is near full: the producer refuses new work so that workers can always drain. Wait for
 * them, saying so on the progress line, and try again; an interrupt stops the wait.
 */
async function withBackpressure<T>(run: Run, add: () => Promise<T>): Promise<T> {
  for (let waitMs = 1_000; ; waitMs = Math.min(waitMs * 2, 15_000)) {
    try {
      const added = await add();
      run.progress.setNote('');
      return added;
    } catch (err) {
      if (!(err instanceof NoHeadroomError) || run.interrupt.interrupted) throw err;
      run.progress.setNote(`waiting for Redis headroom: ${err.message}`);
      await run.interrupt.race(sleep(waitMs));
      if (run.interrupt.interrupted) throw err;
    }
  }
}

// ── --batch ───────────────────────────────────────────────────────────────────────────────────

/** What every line of a batch shares. */
function batchKey(job: Job): string {
  return JSON.stringify([job.account, job.task, job.model, job.provider ?? null, job.parameters ?? null]);
}

function batchMismatch(job: Job, ref: string): string | undefined {
  if (batchKey(job) !== ref)
    return '--batch needs the same account, task, model, provider and parameters on every line';
  if (job.task === 'feature-extraction' && typeof job.inputs !== 'string')
    return '--batch takes one text per feature-extraction line';
  return undefined;
}

/**
 * The file as one batch: added a chunk at a time, results written in input order as they come,
 * each child removed from Redis only once its lines are durably in the output file. A re-run
 * resumes the same batch: it adds what is missing and writes what the output does not hold.
 * Returns how many lines failed.
 */
async function enqueueBatchFile(
  run: Run,
  producer: Producer,
  batchRef: string | undefined,
  coalesce: number,
): Promise<number> {
  const { progress, interrupt } = run;
  const first = (await validLines(run.file, run.account, batchRef).next()).value?.job;
  if (!first || batchRef === undefined) return 0;
  const batchId = `f${run.fileId}`;
  async function* items() {
    for await (const { job } of validLines(run.file, run.account, batchRef)) {
      yield job.task === 'chat-completion' ? job.messages : job.inputs;
    }
  }
  let batch: Batch;
  let abandoned: BatchAbandonedError | undefined;
  try {
    batch = await withBackpressure(run, () =>
      producer.enqueueBatch(
        {
          account: first.account,
          task: first.task,
          model: first.model,
          ...(first.provider !== undefined ? { provider: first.provider } : {}),
          ...(first.parameters !== undefined ? { parameters: first.parameters } : {}),
          items: items(),
          coalesce,
        },
        { batchId, chunkSize: run.chunkSize, sealTimeoutMs: CLI_SEAL_TIMEOUT_MS },
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
    let failed = run.results?.heldFailed ?? 0;
    let written = run.results?.heldLines.length ?? 0;
    try {
      const skip = written;
      const lineNos = validLines(run.file, run.account, batchRef);
      for (let i = 0; i < skip; i++) await lineNos.next();
      const results = run.results;
      const stop = new AbortController();
      void interrupt.promise.then(() => stop.abort(new Error('interrupted')));
      const stream = batch.stream({
        skipItems: skip,
        signal: stop.signal,
        ...(results ? { beforeRemove: () => results.sync() } : {}),
      });
      for (;;) {
        const step = await interrupt.race(stream.next());
        if (step === undefined) {
          // Interrupted: what was written is synced on the way out; unread children stay in Redis.
          await stream.return(undefined).catch(() => {});
          return failed;
        }
        if (step.done) break;
        const lineNo = (await lineNos.next()).value?.lineNo;
        if (!step.value.ok) failed++;
        written++;
        await results?.append({ line: lineNo, ...step.value });
      }
      if (!abandoned)
        await batch.enqueued().catch((err: unknown) => {
          if (err instanceof BatchAbandonedError) abandoned = err;
          else throw err;
        });
      await show();
    } finally {
      clearInterval(poll);
    }
    if (abandoned) {
      const notRun = run.valid - written;
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
