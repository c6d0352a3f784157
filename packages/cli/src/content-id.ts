import { createHash } from 'node:crypto';
import type { Job } from '@hfq/shared';

/**
 * Content identity of a line of `hfq enqueue` (see docs/architecture.md, "The CLI resumes by
 * content"): a job's id derives from what it asks for (account, task, model, provider, inputs,
 * parameters), so a re-run of an edited file adds only the lines whose request changed, and
 * identical requests share one job. Metadata and the caller's own id are not part of it.
 */

/** JSON with object keys sorted at every level: the same value always gives the same text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** What a job asks for, without the caller's metadata. */
export function jobContent(job: Job): unknown {
  return {
    account: job.account,
    task: job.task,
    model: job.model,
    provider: job.provider ?? null,
    inputs: job.task === 'chat-completion' ? job.messages : job.inputs,
    parameters: job.parameters ?? null,
  };
}

/**
 * The job id of a line: `c` and 40 hex digits of the content's sha256; with `lineNo` (the user
 * asked identical lines to run once each) the line number tells identical lines apart.
 */
export function contentJobId(job: Job, lineNo?: number): string {
  const id = `c${sha256Hex(canonicalJson(jobContent(job))).slice(0, 40)}`;
  return lineNo === undefined ? id : `${id}-${lineNo}`;
}

/** A line's input hash, written in its result row: the row is kept while the line is unchanged. */
export function inputHash(value: unknown): string {
  return sha256Hex(canonicalJson(value)).slice(0, 24);
}
