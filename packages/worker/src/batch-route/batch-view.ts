/**
 * A provider's batch object, in either shape (`reference/batch-apis.md`): OpenAI's (lower-case
 * status, `request_counts`) or Together's (upper-case status, `progress`, and `{ job }` around the
 * create answer), read into one view.
 */

export type BatchState =
  | 'validating'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'failed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';

const STATES: ReadonlySet<string> = new Set<BatchState>([
  'validating',
  'in_progress',
  'finalizing',
  'completed',
  'failed',
  'expired',
  'cancelling',
  'cancelled',
]);
const TERMINAL: ReadonlySet<BatchState> = new Set(['completed', 'failed', 'expired', 'cancelled']);

export interface BatchView {
  id: string;
  status: BatchState;
  /** Completed, failed, expired or cancelled: the files will not change any more. */
  terminal: boolean;
  inputFileId: string | undefined;
  outputFileId: string | undefined;
  errorFileId: string | undefined;
  /** Finished share in 0..100, from `request_counts` or `progress`; undefined when neither is given. */
  progress: number | undefined;
  counts: { total: number; completed: number; failed: number } | undefined;
  /** Unix seconds (OpenAI's number, Together's ISO time); undefined when absent. */
  createdAtSec: number | undefined;
  /** The metadata given at create (hfq puts its record id there), when the provider echoes it. */
  metadata: Record<string, string> | undefined;
}

export class BatchShapeError extends Error {
  override readonly name = 'BatchShapeError';
}

const text = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' ? value : undefined;

/** Read a batch answer (`{ job }` unwrapped); throws `BatchShapeError` naming what is missing. */
export function readBatchView(answer: unknown): BatchView {
  const outer = record(answer);
  const batch =
    outer && 'job' in outer && record(outer.job) ? (record(outer.job) as Record<string, unknown>) : outer;
  if (!batch) throw new BatchShapeError('batch answer is not a JSON object');
  const id = text(batch.id);
  if (!id) throw new BatchShapeError('batch answer has no id');
  const status = typeof batch.status === 'string' ? batch.status.toLowerCase() : '';
  if (!STATES.has(status))
    throw new BatchShapeError(`batch ${id} has an unknown status ${JSON.stringify(batch.status)}`);
  const state = status as BatchState;
  const counts = readCounts(batch.request_counts);
  const progress =
    typeof batch.progress === 'number'
      ? batch.progress
      : counts && counts.total > 0
        ? ((counts.completed + counts.failed) / counts.total) * 100
        : undefined;
  return {
    id,
    status: state,
    terminal: TERMINAL.has(state),
    inputFileId: text(batch.input_file_id),
    outputFileId: text(batch.output_file_id),
    errorFileId: text(batch.error_file_id),
    progress,
    counts,
    createdAtSec: readTime(batch.created_at),
    metadata: readMetadata(batch.metadata),
  };
}

function readTime(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}

function readMetadata(value: unknown): Record<string, string> | undefined {
  const found = record(value);
  if (!found) return undefined;
  return Object.fromEntries(
    Object.entries(found).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
}

export interface BatchPage {
  batches: BatchView[];
  /** OpenAI's cursor: more batches after `lastId`. Together answers every batch at once. */
  hasMore: boolean;
  lastId: string | undefined;
}

/** A list answer: OpenAI's `{ data: [...], has_more, last_id }` or Together's bare array. */
export function readBatchList(answer: unknown): BatchPage {
  const items = Array.isArray(answer) ? answer : record(answer)?.data;
  if (!Array.isArray(items)) throw new BatchShapeError('batch list answer has no list of batches');
  const batches = items.map((item) => readBatchView(item));
  const page = Array.isArray(answer) ? undefined : record(answer);
  return { batches, hasMore: page?.has_more === true, lastId: text(page?.last_id) ?? batches.at(-1)?.id };
}

function readCounts(value: unknown): BatchView['counts'] {
  const counts = record(value);
  if (!counts) return undefined;
  const { total, completed, failed } = counts;
  if (typeof total !== 'number' || typeof completed !== 'number' || typeof failed !== 'number')
    return undefined;
  return { total, completed, failed };
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
