/**
 * A finished batch's output and error files, back to hfq jobs by `custom_id` (lines come in any
 * order). A 2xx line is the job's output; any other line is classified like the same answer on the
 * real-time route (a 402 is the key's credits, a 5xx transient), so the caller retries it in real
 * time or fails it as it would a real-time call.
 */
import { type HfqError, TransientUpstreamError } from '@hfq/shared';
import { classifyUpstream } from '@hfq/shared/internal';
import { customIdFor } from './batch-requests.js';

export type LineResult = { ok: true; output: unknown } | { ok: false; error: HfqError };

export interface BatchResults {
  /** By hfq job id. Jobs of the batch missing from both files (not finished) are absent. */
  byJob: Map<string, LineResult>;
  /** Lines whose `custom_id` is not one of the batch's jobs, or that are not JSON (counted, not used). */
  unknownLines: number;
}

/** Read output and error JSONL of a batch whose jobs are `jobIds`. */
export function readBatchResults(
  jobIds: readonly string[],
  files: readonly string[],
  provider: string,
): BatchResults {
  const byCustomId = new Map(jobIds.map((jobId) => [customIdFor(jobId), jobId]));
  const byJob = new Map<string, LineResult>();
  let unknownLines = 0;
  for (const text of files) {
    for (const row of text.split('\n')) {
      if (row.trim() === '') continue;
      const line = parseLine(row);
      const jobId = line ? byCustomId.get(line.customId) : undefined;
      if (!line || !jobId) {
        unknownLines++;
        continue;
      }
      // A job already answered well keeps that answer (a provider never sends both; pay once).
      if (byJob.get(jobId)?.ok) continue;
      byJob.set(jobId, toResult(line, provider));
    }
  }
  return { byJob, unknownLines };
}

interface ParsedLine {
  customId: string;
  status: number | undefined;
  body: unknown;
  requestId: string | undefined;
  lineError: unknown;
}

function parseLine(row: string): ParsedLine | undefined {
  let value: unknown;
  try {
    value = JSON.parse(row);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { custom_id: customId, response, error } = value as Record<string, unknown>;
  if (typeof customId !== 'string') return undefined;
  const answer = (typeof response === 'object' && response !== null ? response : {}) as Record<
    string,
    unknown
  >;
  return {
    customId,
    status: typeof answer.status_code === 'number' ? answer.status_code : undefined,
    body: answer.body,
    requestId: typeof answer.request_id === 'string' ? answer.request_id : undefined,
    lineError: error ?? null,
  };
}

function toResult(line: ParsedLine, provider: string): LineResult {
  const { status } = line;
  if (status !== undefined && status >= 200 && status < 300 && line.body !== undefined)
    return { ok: true, output: line.body };
  if (status === undefined) {
    // No answer at all (OpenAI's `error` lines, e.g. `batch_expired`): the request never ran.
    const message = (line.lineError as { message?: unknown } | null)?.message;
    return {
      ok: false,
      error: new TransientUpstreamError(
        `batch line did not run${typeof message === 'string' ? `: ${message}` : ''}`,
        { provider, requestId: line.requestId },
      ),
    };
  }
  const body = typeof line.body === 'string' ? line.body : JSON.stringify(line.body ?? '');
  return {
    ok: false,
    error: classifyUpstream({ status, body, requestId: line.requestId, provider, route: 'provider-key' }),
  };
}
