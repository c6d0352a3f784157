import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createProducer, type JobHandle } from '@hfq/producer';
import { JOB, type Job, loadConnectionConfig, ValidationError } from '@hfq/shared';
import { Progress } from '../progress.js';

export const ENQUEUE_HELP = `hfq enqueue <file.jsonl> [--account A] [--wait] [--out results.jsonl] [--skip-invalid] [--chunk N]
                           [--batch [--coalesce N]]

Enqueues one job per line. The whole file is validated first: a bad line is reported with its
line number and field, and nothing is enqueued unless --skip-invalid is given. Job ids derive
from the file's content and line number, so running the same file twice adds nothing twice.
  --account A      set the account of every line (else each line names its own)
  --wait           wait for every result, with progress (enqueued, done, failed, rate, ETA)
  --out FILE       write results in input order as JSONL (implies --wait)
  --skip-invalid   enqueue the valid lines, report the others
  --chunk N        lines per round trip to Redis (default 1000)
  --batch          enqueue the lines as one batch: a flow whose items run after single jobs, read back
                   in input order with per-line errors, removed from Redis once written; every line
                   has the same account, task, model, provider and parameters; the batch id derives
                   from the file, so running it again attaches to the same batch
  --coalesce N     with --batch: inputs per upstream request (feature-extraction, sentence-similarity)`;

interface Line {
  lineNo: number;
  job: unknown;
}

async function* readLines(path: string): AsyncGenerator<{ lineNo: number; text: string }> {
  const rl = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Number.POSITIVE_INFINITY });
  let lineNo = 0;
  for await (const text of rl) {
    lineNo++;
    if (text.trim() !== '') yield { lineNo, text };
  }
}

function parseLine(text: string, account: string | undefined): unknown {
  const value = JSON.parse(text) as Record<string, unknown>;
  return account !== undefined && value && typeof value === 'object' ? { ...value, account } : value;
}

/** First pass, constant memory: validate every line and hash the file (for idempotent job ids). */
async function validateFile(path: string, account: string | undefined, batch = false) {
  const hash = createHash('sha256');
  const bad: string[] = [];
  let valid = 0;
  let batchRef: string | undefined;
  for await (const { lineNo, text } of readLines(path)) {
    hash.update(`${lineNo}\n${text}\n`);
    try {
      const result = JOB.safeParse(parseLine(text, account));
      // --batch: every line must share what a batch shares (the first valid line sets it).
      if (batch && result.success) batchRef ??= batchKey(result.data);
      const mismatch =
        batchRef !== undefined && result.success ? batchMismatch(result.data, batchRef) : undefined;
      if (mismatch) bad.push(`line ${lineNo}: ${mismatch}`);
      else if (result.success) valid++;
      else {
        const issue = result.error.issues[0];
        bad.push(`line ${lineNo}: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
      }
    } catch (err) {
      bad.push(`line ${lineNo}: not JSON (${(err as Error).message})`);
    }
  }
  return { valid, bad, fileId: hash.digest('hex').slice(0, 12), batchRef };
}

export async function runEnqueue(env: NodeJS.ProcessEnv, argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      account: { type: 'string' },
      wait: { type: 'boolean', default: false },
      out: { type: 'string' },
      'skip-invalid': { type: 'boolean', default: false },
      chunk: { type: 'string', default: '1000' },
      batch: { type: 'boolean', default: false },
      coalesce: { type: 'string', default: '1' },
    },
  });
  const file = positionals[0];
  if (!file) throw new Error(`missing <file.jsonl>\n\n${ENQUEUE_HELP}`);
  const chunkSize = Math.max(1, Math.min(10_000, Number(values.chunk) || 1000));
  const wait = values.wait || values.out !== undefined;
  const { valid, bad, fileId, batchRef } = await validateFile(file, values.account, values.batch);
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

  const config = loadConnectionConfig(env);
  if (values.batch) {
    const coalesce = Number(values.coalesce);
    return enqueueBatchFile(file, { ...values, batchRef, valid, fileId, chunkSize, wait, coalesce }, config);
  }
  const producer = createProducer({ connection: config.redisUrl, prefix: config.prefix });
  const progress = new Progress(valid, process.stderr);
  const out = values.out ? createWriteStream(values.out) : undefined;
  try {
    let chunk: Line[] = [];
    const flush = async () => {
      if (chunk.length === 0) return;
      const lines = chunk;
      chunk = [];
      const handles = await producer.enqueueMany(
        lines.map((l) => ({ job: l.job as never, options: { jobId: `f${fileId}-${l.lineNo}` } })),
      );
      progress.enqueued(handles.length);
      if (wait) await collect(lines, handles, progress, out);
    };
    for await (const { lineNo, text } of readLines(file)) {
      let job: unknown;
      try {
        job = parseLine(text, values.account);
        if (!JOB.safeParse(job).success) continue;
      } catch {
        continue;
      }
      chunk.push({ lineNo, job });
      if (chunk.length >= chunkSize) await flush();
    }
    await flush();
    progress.finish();
  } finally {
    if (out) await new Promise<void>((resolve) => out.end(resolve));
    await producer.close();
  }
}

/** Wait for one chunk's results and write them in input order. */
async function collect(
  lines: Line[],
  handles: JobHandle[],
  progress: Progress,
  out: NodeJS.WritableStream | undefined,
) {
  const settled = await Promise.all(
    handles.map((h) =>
      h.result().then(
        (result) => {
          progress.done(true);
          return { ok: true as const, result };
        },
        (err: Error) => {
          progress.done(false);
          return { ok: false as const, error: err.message };
        },
      ),
    ),
  );
  if (!out) return;
  settled.forEach((entry, i) => {
    const lineNo = lines[i]?.lineNo;
    out.write(
      `${JSON.stringify(entry.ok ? { line: lineNo, ok: true, ...entry.result } : { line: lineNo, ok: false, error: entry.error })}\n`,
    );
  });
}

// ── --batch (issue 6) ─────────────────────────────────────────────────────────────────────────

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

/** The valid lines of a batch file, in order (the same filter as the first pass). */
async function* batchLines(path: string, account: string | undefined, ref: string | undefined) {
  for await (const { lineNo, text } of readLines(path)) {
    let parsed: ReturnType<typeof JOB.safeParse>;
    try {
      parsed = JOB.safeParse(parseLine(text, account));
    } catch {
      continue;
    }
    if (parsed.success && ref !== undefined && !batchMismatch(parsed.data, ref))
      yield { lineNo, job: parsed.data };
  }
}

/** The file as one batch: read and added a chunk at a time, results written in input order as they come. */
async function enqueueBatchFile(
  file: string,
  options: {
    account?: string | undefined;
    out?: string | undefined;
    batchRef: string | undefined;
    valid: number;
    fileId: string;
    chunkSize: number;
    wait: boolean;
    coalesce: number;
  },
  config: { redisUrl: string; prefix: string },
): Promise<void> {
  const first = (await batchLines(file, options.account, options.batchRef).next()).value?.job;
  if (!first || options.batchRef === undefined) {
    console.error('nothing to enqueue');
    return;
  }
  const producer = createProducer({ connection: config.redisUrl, prefix: config.prefix });
  const progress = new Progress(options.valid, process.stderr);
  const out = options.out ? createWriteStream(options.out) : undefined;
  let poll: NodeJS.Timeout | undefined;
  try {
    async function* items() {
      for await (const { job } of batchLines(file, options.account, options.batchRef)) {
        yield job.task === 'chat-completion' ? job.messages : job.inputs;
      }
    }
    const batch = await producer.enqueueBatch(
      {
        account: first.account,
        task: first.task,
        model: first.model,
        ...(first.provider !== undefined ? { provider: first.provider } : {}),
        ...(first.parameters !== undefined ? { parameters: first.parameters } : {}),
        items: items(),
        coalesce: options.coalesce,
      },
      { batchId: `f${options.fileId}`, chunkSize: options.chunkSize },
    );
    console.error(`batch ${batch.id} (account ${batch.account})`);
    const show = async () => {
      const p = await batch.progress();
      progress.set({ enqueued: p.total, done: p.ok, failed: p.failed + p.cancelled });
    };
    if (!options.wait) {
      await batch.enqueued();
      await show();
      progress.finish();
      return;
    }
    poll = setInterval(() => void show().catch(() => {}), 500);
    // Results in input order; each child leaves Redis once its lines are written.
    const lineNos = batchLines(file, options.account, options.batchRef);
    for await (const result of batch.stream()) {
      const lineNo = (await lineNos.next()).value?.lineNo;
      if (out && !out.write(`${JSON.stringify({ line: lineNo, ...result })}\n`)) await once(out, 'drain');
    }
    await batch.enqueued();
    await show();
    progress.finish();
  } finally {
    clearInterval(poll);
    if (out) await new Promise<void>((resolve) => out.end(resolve));
    await producer.close();
  }
}
