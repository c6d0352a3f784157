/**
 * The batch API's answers on the wire, in the two shapes providers use (`reference/batch-apis.md`):
 * OpenAI's batch object (lower-case status, `request_counts`, unix seconds) and Together's job
 * (upper-case status, `progress` percentage, ISO times). Output and error lines share one shape.
 */
import type { FinishedLine, SimBatch, SimFile } from './batch-store.js';
import { isSuccess, isTerminal } from './batch-store.js';

const iso = (sec: number): string => new Date(sec * 1000).toISOString();
const windowText = (ms: number): string => (ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : `${ms / 1000}s`);

function counts(batch: SimBatch): { total: number; completed: number; failed: number } {
  const failed = batch.finished.filter((line) => !isSuccess(line.outcome)).length;
  return { total: batch.lines.length, completed: batch.finished.length - failed, failed };
}

/** Output and error file ids appear once the batch is over, and only when the file has lines. */
function resultFiles(batch: SimBatch): { output: string | null; error: string | null } {
  if (!isTerminal(batch.status)) return { output: null, error: null };
  const { completed, failed } = counts(batch);
  return { output: completed > 0 ? batch.outputFileId : null, error: failed > 0 ? batch.errorFileId : null };
}

/** Batch time (ms since creation) as unix seconds. */
const at = (batch: SimBatch, ms: number | null): number | null =>
  ms === null ? null : batch.createdAtSec + Math.floor(ms / batch.timeScale / 1000);

export function openAiBatch(batch: SimBatch, cancelling = false): Record<string, unknown> {
  const files = resultFiles(batch);
  const ended = at(batch, batch.endedAtMs);
  return {
    id: batch.id,
    object: 'batch',
    endpoint: batch.endpoint,
    errors: null,
    input_file_id: batch.inputFile.id,
    completion_window: windowText(batch.windowMs),
    status: cancelling && batch.status === 'cancelled' ? 'cancelling' : batch.status,
    output_file_id: files.output,
    error_file_id: files.error,
    created_at: batch.createdAtSec,
    in_progress_at: batch.status === 'validating' ? null : at(batch, batch.validatingMs),
    expires_at: at(batch, batch.windowMs),
    completed_at: batch.status === 'completed' ? ended : null,
    expired_at: batch.status === 'expired' ? ended : null,
    cancelling_at: batch.status === 'cancelled' ? ended : null,
    cancelled_at: batch.status === 'cancelled' && !cancelling ? ended : null,
    failed_at: null,
    request_counts: counts(batch),
    metadata: batch.metadata,
  };
}

export function togetherBatch(batch: SimBatch): Record<string, unknown> {
  const files = resultFiles(batch);
  const { total, completed, failed } = counts(batch);
  const ended = at(batch, batch.endedAtMs);
  return {
    id: batch.id,
    user_id: batch.owner.label,
    input_file_id: batch.inputFile.id,
    file_size_bytes: batch.inputFile.bytes,
    status: (batch.status === 'finalizing' ? 'in_progress' : batch.status).toUpperCase(),
    job_deadline: iso(at(batch, batch.windowMs) ?? batch.createdAtSec),
    created_at: iso(batch.createdAtSec),
    endpoint: batch.endpoint,
    progress: Math.round(((completed + failed) / total) * 1000) / 10,
    model_id: modelOf(batch),
    output_file_id: files.output,
    error_file_id: files.error,
    error: null,
    completed_at: ended === null ? null : iso(ended),
    metadata: batch.metadata,
  };
}

export function batchJson(batch: SimBatch, cancelling = false): Record<string, unknown> {
  return batch.style === 'together' ? togetherBatch(batch) : openAiBatch(batch, cancelling);
}

function modelOf(batch: SimBatch): string | null {
  const model = batch.lines[0]?.body.model;
  return typeof model === 'string' ? model : null;
}

export function fileJson(file: SimFile): Record<string, unknown> {
  return {
    id: file.id,
    object: 'file',
    bytes: file.bytes,
    created_at: file.createdAtSec,
    filename: file.filename,
    purpose: file.purpose,
  };
}

/** One line of an output or error file (a failed line keeps its status and the upstream's error body). */
export function resultLine(line: FinishedLine, index: number): string {
  return JSON.stringify({
    id: `batch_req_${index.toString(36)}${line.requestId.slice(-6)}`,
    custom_id: line.customId,
    response: { status_code: line.outcome.status, request_id: line.requestId, body: line.outcome.body },
    error: null,
  });
}
