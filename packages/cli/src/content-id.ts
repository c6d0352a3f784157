import { createHash } from 'node:crypto';
import { canonicalJson, contentJobId, type Job } from '@hfq/shared';

/**
 * Content identity of a line of `hfq enqueue` (see docs/architecture.md, "The CLI resumes by
 * content"): a line's job is the one content identity gives its request (`contentJobId` in
 * `@hfq/shared`, the same id a library producer gives the same work), so a re-run of an edited
 * file adds only the lines whose request changed, identical requests share one job, and a line
 * enqueued by the CLI and the same work enqueued by a program are one job. Metadata and the
 * caller's own id are not part of it.
 */

/**
 * The job id of a line; with `lineNo` (the user asked identical lines to run once each) the line
 * number is the content key that tells identical lines apart.
 */
export function lineJobId(job: Job, lineNo?: number): string {
  return contentJobId(job, lineNo === undefined ? {} : { key: `line-${lineNo}` });
}

/** A line's input hash, written in its result row: the row is kept while the line is unchanged. */
export function inputHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 24);
}
