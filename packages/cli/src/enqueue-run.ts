import type { Connection } from '@hfq/shared';
import type { Plan } from './enqueue-plan.js';
import type { Interrupt } from './interrupt.js';
import type { AccountChoice, CallerId, JobLine } from './job-line.js';
import type { Progress } from './progress.js';
import type { ResultsFile } from './results-file.js';

/** What the run passes of `hfq enqueue` share (enqueue-jobs.ts, enqueue-batch.ts). */
export interface Run {
  file: string;
  accounts: AccountChoice;
  eachLine: boolean;
  /** `hfq retry`: failed jobs of the file's lines run again. */
  retryFailed: boolean;
  plan: Plan;
  results: ResultsFile | undefined;
  chunkSize: number;
  wait: boolean;
  interrupt: Interrupt;
  progress: Progress;
  connection: Connection;
  prefix: string;
  /** `--deadline`, `--prefer`: the producer's options for every job (empty without a deadline). */
  due: { deadline?: Date; preference?: 'cost' | 'speed' };
}

/**
 * A result row (one shape for single jobs and batches): the line, the caller's id under the key
 * it came with, the outcome, what served it (null where a batch does not say), the caller's
 * metadata, and the line's input hash (a re-run keeps the row while the line is unchanged).
 */
export function resultRow(
  lineNo: number,
  line: JobLine,
  outcome:
    | { ok: true; output: unknown; provider?: string; route?: string; costUsd?: number }
    | { ok: false; error: string },
  batch?: string,
): { line: number } & Record<string, unknown> {
  const id: Partial<Record<CallerId['key'], CallerId['value']>> = line.callerId
    ? { [line.callerId.key]: line.callerId.value }
    : {};
  const served = outcome.ok
    ? {
        output: outcome.output,
        provider: outcome.provider ?? null,
        route: outcome.route ?? null,
        costUsd: outcome.costUsd ?? null,
      }
    : { error: outcome.error };
  return {
    line: lineNo,
    ...id,
    ok: outcome.ok,
    ...served,
    ...(line.ok && line.metadata ? { metadata: line.metadata } : {}),
    ...(batch ? { batch } : {}),
    input_hash: line.hash,
  };
}
