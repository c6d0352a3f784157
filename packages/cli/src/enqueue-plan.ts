import { createHash } from 'node:crypto';
import type { Job } from '@hfq/shared';
import { DEFAULT_PRICES, estimateCost } from '@hfq/worker';
import { estimateTokens } from '@hfq/worker/internal';
import { lineJobId } from './content-id.js';
import { readInputLines } from './input-lines.js';
import { type AccountChoice, type JobLine, parseJobLine } from './job-line.js';
import type { HeldRow } from './results-file.js';

/**
 * The first pass of `hfq enqueue`, in constant memory but for a set of line numbers: every line
 * parsed and checked, matched by input hash against the rows `--out` holds (a row is kept while
 * its line's input is unchanged, wherever the line moved), priced (an estimate from the
 * worker's price table), and, for `--batch`, checked for what a batch's lines share.
 */

export interface InputLine {
  lineNo: number;
  parsed: JobLine;
}

/** Every non-blank line of the input, parsed; a line that is not text is an invalid line. */
export async function* inputLines(
  path: string,
  accounts: AccountChoice,
  options: { hash?: boolean } = {},
): AsyncGenerator<InputLine> {
  for await (const line of readInputLines(path)) {
    yield {
      lineNo: line.lineNo,
      parsed:
        line.text === undefined
          ? { ok: false, error: line.problem, hash: `bytes-${line.lineNo}` }
          : parseJobLine(line.text, accounts, options),
    };
  }
}

export interface Plan {
  lines: number;
  valid: number;
  /** First invalid lines' messages (`line N: …`), and how many lines are invalid in all. */
  badMessages: string[];
  bad: number;
  /** Invalid lines whose only fault is a missing account. */
  noAccount: number;
  /** Held rows kept for the lines they are for (in input order), and those lines. */
  kept: { row: HeldRow; line: number }[];
  keptLines: Set<number>;
  /** Held rows whose line changed or went. */
  dropped: number;
  /** The kept rows must be rewritten (some dropped, or their lines moved). */
  rewrite: boolean;
  /** Kept rows of valid lines, and how many of them are failures. */
  keptValid: number;
  keptFailed: number;
  /** Lines without a kept row: to run (valid) or to report (invalid). */
  todo: number;
  /** Valid lines to run, per account. */
  perAccount: Map<string, number>;
  /** Distinct jobs among the lines to run (`price` only). */
  distinctJobs: number;
  /** `price` only. */
  estimatedCostUsd: number;
  /** `price` only: per account, its distinct jobs, their estimated tokens and cost (a deadline's projection). */
  pricedPerAccount: Map<string, { jobs: number; tokens: number; costUsd: number; chatJobs: number }>;
  /** --batch: what every line shares, and the batch id (from the content of every valid line). */
  batchRef: string | undefined;
  batchId: string;
  /** --batch: the kept rows are the input's first lines, in order (the batch can resume). */
  keptIsPrefix: boolean;
}

export interface PlanOptions {
  accounts: AccountChoice;
  batch: boolean;
  /** Identical lines run once each (the id includes the line number). */
  eachLine: boolean;
  /** Count distinct jobs and price them (`--dry-run`, `--deadline`); a run without either skips it. */
  price?: boolean;
  held: readonly HeldRow[];
  /** `hfq retry`: a held failure of a valid line is not kept (the line runs again). */
  retryFailed?: boolean;
}

export async function planInput(path: string, options: PlanOptions): Promise<Plan> {
  const byHash = new Map<string, number[]>();
  options.held.forEach((row, i) => {
    if (row.hash === undefined) return;
    const list = byHash.get(row.hash);
    if (list) list.push(i);
    else byHash.set(row.hash, [i]);
  });
  const plan: Plan = {
    lines: 0,
    valid: 0,
    badMessages: [],
    bad: 0,
    noAccount: 0,
    kept: [],
    keptLines: new Set(),
    dropped: 0,
    rewrite: false,
    keptValid: 0,
    keptFailed: 0,
    todo: 0,
    perAccount: new Map(),
    distinctJobs: 0,
    estimatedCostUsd: 0,
    pricedPerAccount: new Map(),
    batchRef: undefined,
    batchId: '',
    keptIsPrefix: true,
  };
  const batchHash = createHash('sha256');
  const distinct = new Set<string>();
  let prefixOpen = true;
  for await (const { lineNo, parsed } of inputLines(path, options.accounts)) {
    plan.lines++;
    let line = parsed;
    if (line.ok && options.batch) {
      plan.batchRef ??= batchKey(line.job);
      const mismatch = batchMismatch(line.job, plan.batchRef);
      if (mismatch) line = { ok: false, error: mismatch, hash: line.hash };
    }
    if (line.ok) {
      plan.valid++;
      if (options.batch) batchHash.update(`${lineJobId(line.job)}\n`);
    } else {
      plan.bad++;
      if (line.noAccount) plan.noAccount++;
      if (plan.badMessages.length < 50) plan.badMessages.push(`line ${lineNo}: ${line.error}`);
    }
    let match = byHash.get(line.hash)?.shift();
    if (match !== undefined && options.retryFailed && line.ok && !options.held[match]?.ok) match = undefined;
    if (match !== undefined) {
      const row = options.held[match] as HeldRow;
      plan.kept.push({ row, line: lineNo });
      plan.keptLines.add(lineNo);
      if (line.ok) plan.keptValid++;
      if (line.ok && !row.ok) plan.keptFailed++;
      if (row.line !== lineNo || match !== plan.kept.length - 1) plan.rewrite = true;
      if (!prefixOpen) plan.keptIsPrefix = false;
      continue;
    }
    prefixOpen = false;
    plan.todo++;
    if (!line.ok) continue;
    const account = line.job.account;
    plan.perAccount.set(account, (plan.perAccount.get(account) ?? 0) + 1);
    if (!options.price) continue;
    const id = lineJobId(line.job, options.eachLine ? lineNo : undefined);
    // Priced once per distinct job: identical lines share one request.
    if (!distinct.has(id)) {
      distinct.add(id);
      const costUsd = estimatedCostUsd(line.job);
      plan.estimatedCostUsd += costUsd;
      const share = plan.pricedPerAccount.get(account) ?? { jobs: 0, tokens: 0, costUsd: 0, chatJobs: 0 };
      share.jobs++;
      if (line.job.task === 'chat-completion') share.chatJobs++;
      share.tokens += estimateTokens(line.job);
      share.costUsd += costUsd;
      plan.pricedPerAccount.set(account, share);
    }
  }
  plan.distinctJobs = distinct.size;
  plan.dropped = options.held.length - plan.kept.length;
  if (plan.dropped > 0) plan.rewrite = true;
  plan.batchId = `f${batchHash.digest('hex').slice(0, 12)}`;
  return plan;
}

/** A job's estimated cost before it runs: chat from its estimated tokens, the rest per request. */
export function estimatedCostUsd(job: Job): number {
  if (job.task === 'chat-completion') {
    const price =
      DEFAULT_PRICES.tokens[`${job.provider ?? ''}/${job.model}`] ??
      DEFAULT_PRICES.tokens[`${job.provider ?? ''}/*`] ??
      DEFAULT_PRICES.tokens['*'];
    if (price) return (estimateTokens(job) * Math.max(price.inputPerM, price.outputPerM)) / 1_000_000;
  }
  return estimateCost(DEFAULT_PRICES, job, job.provider ?? 'auto', undefined);
}

/** What every line of a batch shares. */
export function batchKey(job: Job): string {
  return JSON.stringify([job.account, job.task, job.model, job.provider ?? null, job.parameters ?? null]);
}

function batchMismatch(job: Job, ref: string): string | undefined {
  if (batchKey(job) !== ref)
    return '--batch needs the same account, task, model, provider and parameters on every line';
  if (job.task === 'feature-extraction' && typeof job.inputs !== 'string')
    return '--batch takes one text per feature-extraction line';
  return undefined;
}

/** A line as the run passes see it: the same checks as the plan (the batch's shared fields too). */
export function checkedLine(line: JobLine, batchRef: string | undefined): JobLine {
  if (!line.ok || batchRef === undefined) return line;
  const mismatch = batchMismatch(line.job, batchRef);
  return mismatch ? { ok: false, error: mismatch, hash: line.hash } : line;
}
