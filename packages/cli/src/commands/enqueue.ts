import { stat } from 'node:fs/promises';
import { createProducer } from '@hfq/producer';
import { LIMITS, ValidationError } from '@hfq/shared';
import { loadConnectionConfig } from '@hfq/shared/internal';
import { DEADLINE_MISSED_EXIT, readDeadlineFlags } from '../deadline-flags.js';
import { projectionText, projectRun } from '../deadline-projection.js';
import { runBatch } from '../enqueue-batch.js';
import { runJobs } from '../enqueue-jobs.js';
import { type Plan, planInput } from '../enqueue-plan.js';
import type { Run } from '../enqueue-run.js';
import { Interrupt } from '../interrupt.js';
import { Progress } from '../progress.js';
import { type HeldRow, ResultsFile, readHeldRows } from '../results-file.js';
import { parseCommand, UsageError, wholeOption } from '../usage.js';

export const ENQUEUE_HELP = `Usage: hfq enqueue <file.jsonl> [--account A] [--wait] [--out results.jsonl] [--skip-invalid]
                           [--dry-run] [--each-line] [--order input|completion] [--chunk N]
                           [--batch [--coalesce N]] [--deadline WHEN [--prefer cost|speed] [--deadline-strict]]

Enqueues one job per line: hfq's own lines, or the OpenAI Batch format (custom_id, method, url,
body: /v1/chat/completions and /v1/embeddings). The whole file is validated first: a bad line is
reported with its line number and field, and nothing is enqueued unless --skip-invalid is given.
A job's id derives from what the line asks (account, task, model, provider, inputs, parameters),
so running the file again, or after editing it, adds only the lines whose request is new.
  --account A      the account of every line (else each line's own, else HFQ_ACCOUNT)
  --wait           enqueue the whole file, then wait for every result, with progress; exits 1
                   if any job failed (the last line says how many)
  --out FILE       write one row per line as JSONL (implies --wait): the line, its custom_id or
                   id, ok, output or error, provider, route, costUsd, metadata, input_hash. Rows
                   reach FILE within a second of finishing. Re-running (after Ctrl-C, a crash or
                   an edit) keeps the rows of unchanged lines and adds the rest
  --order O        input (default): FILE is in line order when the run ends; completion: rows
                   stay in the order they finished
  --skip-invalid   enqueue the valid lines; the others get a row with their error
  --dry-run        validate, count and price (an estimate from the worker's default price
                   table) without enqueueing anything
  --each-line      identical lines run once each (default: they share one job and one result)
  --chunk N        lines per round trip to Redis, 1 to 10000 (default 1000)
  --batch          enqueue the lines as one batch: a flow whose items run after single jobs, read back
                   in input order with per-line errors, removed from Redis once durably written; every
                   line has the same account, task, model, provider and parameters; the batch id
                   derives from the lines' content, so running it again resumes the same batch
  --coalesce N     with --batch: inputs per upstream request (feature-extraction, sentence-similarity)
  --deadline WHEN  every job of the run (and every item of --batch) should be done by WHEN: a duration
                   from now (90m, 6h, 1h30m) or an ISO time with a zone (2026-12-24T18:00Z). Before
                   enqueueing, prints per account the projected finish against it: the jobs waiting
                   plus this run's, at the rate hfq status shows, judged by the worker's planner
  --prefer P       with --deadline: cost (default: the cheapest route that meets it) or speed
  --deadline-strict  with --deadline: when the projection says it cannot be met, enqueue nothing
                   and exit 3`;

const OPTIONS = {
  account: { type: 'string' },
  wait: { type: 'boolean' },
  out: { type: 'string' },
  order: { type: 'string' },
  'skip-invalid': { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  'each-line': { type: 'boolean' },
  chunk: { type: 'string' },
  batch: { type: 'boolean' },
  coalesce: { type: 'string' },
  deadline: { type: 'string' },
  prefer: { type: 'string' },
  'deadline-strict': { type: 'boolean' },
} as const;

export interface EnqueueMode {
  /** `hfq retry <file>`: failed lines run again. */
  retryFailed?: boolean;
  usage?: string;
}

export async function runEnqueue(
  env: NodeJS.ProcessEnv,
  argv: string[],
  mode: EnqueueMode = {},
): Promise<void> {
  const usage = mode.usage ?? ENQUEUE_HELP;
  const { values, positionals } = parseCommand(argv, OPTIONS, usage, ['file.jsonl']);
  const file = positionals[0];
  if (!file) throw new UsageError('missing <file.jsonl>', usage);
  const chunkSize = wholeOption(values.chunk, 'chunk', 1, 10_000, 1_000, usage);
  if (values.coalesce !== undefined && !values.batch)
    throw new UsageError('--coalesce applies only with --batch', usage);
  const coalesce = wholeOption(values.coalesce, 'coalesce', 1, LIMITS.MAX_INPUT_ITEMS, 1, usage);
  const order = values.order ?? 'input';
  if (order !== 'input' && order !== 'completion')
    throw new UsageError(`--order takes input or completion, got "${order}"`, usage);
  if (values.batch && values['each-line'])
    throw new UsageError('--each-line applies only without --batch (a batch runs every line)', usage);
  const deadline = readDeadlineFlags(values, usage, Date.now());
  const fileStat = await stat(file).catch(() => undefined);
  if (!fileStat?.isFile()) throw new UsageError(`${file}: no such file`, usage);
  const config = loadConnectionConfig(env);
  const dryRun = values['dry-run'] === true;
  const wait = values.wait === true || values.out !== undefined;
  const accounts = { override: values.account, fallback: env.HFQ_ACCOUNT || undefined };

  // The output is checked (not the input file, a folder that exists) before anything else.
  let held: HeldRow[] = [];
  let results: ResultsFile | undefined;
  if (values.out !== undefined) {
    if (dryRun) held = await readHeldRows(values.out, file, usage);
    else {
      results = await ResultsFile.open(values.out, file, usage);
      held = results.held;
    }
  }
  try {
    const plan = await planInput(file, {
      accounts,
      batch: values.batch === true,
      eachLine: values['each-line'] === true,
      held,
      retryFailed: mode.retryFailed === true,
      price: dryRun || deadline !== undefined,
    });
    const invalid = reportInvalid(plan, file, values['skip-invalid'] === true);
    if (held.length > 0 && plan.kept.length === 0) {
      throw new UsageError(
        `--out ${values.out} holds results of another input (none of its ${held.length} rows is for a line of ${file}); choose another file`,
        usage,
      );
    }
    if (values.batch && plan.kept.length > 0) refuseChangedBatch(plan, values.out as string, usage);
    // Projected against the deadline once the file is known valid, before anything is enqueued.
    const projection =
      deadline && (dryRun || !invalid) && plan.pricedPerAccount.size > 0
        ? await projectRun(config.connection, config.prefix, plan.pricedPerAccount, deadline)
        : undefined;
    const projectionLines = projection && deadline ? projectionText(projection, deadline) : [];
    if (dryRun) {
      console.log([dryRunText(plan, values.out), ...projectionLines].join('\n'));
      if (invalid) process.exitCode = 2;
      else if (projection?.missed && deadline?.strict) process.exitCode = DEADLINE_MISSED_EXIT;
      return;
    }
    if (invalid) throw invalid;
    for (const line of projectionLines) console.error(line);
    if (projection?.missed && deadline?.strict) {
      process.exitCode = DEADLINE_MISSED_EXIT;
      return;
    }
    if (plan.rewrite) await results?.keep(plan.kept);
    if (plan.todo === 0) {
      console.error(
        plan.lines === 0
          ? 'nothing to enqueue: the file has no lines'
          : `nothing to add: --out ${values.out} holds a row for each of the ${plan.lines} line(s)`,
      );
      if (plan.keptFailed > 0) process.exitCode = 1;
      return;
    }
    if (plan.valid === 0 && !results) {
      console.error('nothing to enqueue');
      return;
    }
    const run: Run = {
      file,
      accounts,
      eachLine: values['each-line'] === true,
      retryFailed: mode.retryFailed === true,
      plan,
      results,
      chunkSize,
      wait,
      interrupt: new Interrupt(),
      progress: new Progress(plan.valid, process.stderr, {
        done: plan.keptValid - plan.keptFailed,
        failed: plan.keptFailed,
      }),
      connection: config.connection,
      prefix: config.prefix,
      due: deadline ? { deadline: new Date(deadline.atMs), preference: deadline.preference } : {},
    };
    if (deadline) run.progress.setDeadline(deadline.atMs);
    const producer = createProducer({ connection: config.connection, prefix: config.prefix });
    let failed = 0;
    try {
      failed = values.batch ? await runBatch(run, producer, coalesce) : await runJobs(run, producer);
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
    if (order === 'input') await results?.sortByLine(usage);
    if (!wait) return;
    run.progress.finish();
    if (plan.bad > 0)
      console.error(`${plan.bad} invalid line(s) not run${results ? ' (their rows say why)' : ''}`);
    if (failed > 0 && !mode.retryFailed)
      console.error(`to run the failed lines again: hfq retry ${argv.map(shellWord).join(' ')}`);
    console.error(run.progress.summary(values.out));
    if (failed > 0) process.exitCode = 1;
  } finally {
    await results?.close();
  }
}

/**
 * Print the invalid lines (one summary line when every line only lacks an account); the error to
 * stop on unless --skip-invalid, else undefined.
 */
function reportInvalid(plan: Plan, file: string, skip: boolean): ValidationError | undefined {
  if (plan.bad === 0) return undefined;
  const accountHint = 'name it on each line, give --account A, or set HFQ_ACCOUNT';
  if (plan.noAccount === plan.bad) {
    console.error(`${plan.bad} line(s) name no account: ${accountHint}`);
  } else {
    for (const line of plan.badMessages) console.error(line);
    if (plan.bad > plan.badMessages.length)
      console.error(`… and ${plan.bad - plan.badMessages.length} more invalid lines`);
  }
  if (skip) return undefined;
  const hint =
    plan.noAccount === plan.bad
      ? accountHint
      : `use --skip-invalid to enqueue the rest${plan.noAccount > 0 ? `; for a missing account, ${accountHint}` : ''}`;
  return new ValidationError('input file', [
    { path: file, message: `${plan.bad} invalid line(s); nothing enqueued (${hint})` },
  ]);
}

/** A batch resumes only its own content: a changed input would run its unchanged lines again. */
function refuseChangedBatch(plan: Plan, out: string, usage: string): void {
  const other = plan.kept.find((k) => k.row.batch !== undefined && k.row.batch !== plan.batchId);
  if (!other && plan.keptIsPrefix && !plan.kept.some((k) => k.row.batch === undefined)) return;
  const what = other ? `batch ${other.row.batch}, for other content` : 'results not of this batch';
  throw new UsageError(
    `--out ${out} holds ${what}: --batch resumes only an unchanged input (run the new or changed lines to another --out, or without --batch)`,
    usage,
  );
}

function dryRunText(plan: Plan, out: string | undefined): string {
  const perAccount = [...plan.perAccount].map(([a, n]) => `${a} ${n}`).join(', ') || 'none';
  const toRun = [...plan.perAccount.values()].reduce((a, b) => a + b, 0);
  return [
    `dry run: ${plan.lines} line(s): ${plan.valid} valid, ${plan.bad} invalid`,
    ...(out ? [`--out ${out} holds ${plan.kept.length} row(s) to keep, ${plan.dropped} to drop`] : []),
    `would enqueue ${toRun} line(s) as ${plan.distinctJobs} job(s) (per account: ${perAccount})`,
    `estimated cost ${costText(plan.estimatedCostUsd)} (the worker's default price table; jobs already in Redis cost nothing again)`,
  ].join('\n');
}

/** Small estimates keep two significant digits ($0.000015), larger ones cents. */
function costText(usd: number): string {
  return `$${usd === 0 ? '0' : usd < 1 ? Number(usd.toPrecision(2)).toString() : usd.toFixed(2)}`;
}

/** An argument as a shell reads it back: quoted when it holds anything but safe characters. */
function shellWord(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}
