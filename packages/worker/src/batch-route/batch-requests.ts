/**
 * Jobs as a provider batch API's input (see docs/architecture.md, "Deadlines and the batch
 * route"): one JSONL line per job, `custom_id` derived from the hfq job id, the body the real-time
 * route would send (with the provider's model id), split into files within the provider's limits.
 */
import { createHash } from 'node:crypto';
import type { Job } from '@hfq/shared';
import { BATCH_ENDPOINT_BY_TASK } from '@hfq/shared/internal';

/** The batch endpoints hfq uses, by task (the producer parks these tasks' jobs too). */
export { BATCH_ENDPOINT_BY_TASK };

/** Longest `custom_id` every provider accepts (Together documents 64). */
export const MAX_CUSTOM_ID_LENGTH = 64;

export interface BatchRequest {
  jobId: string;
  customId: string;
  endpoint: string;
  body: Record<string, unknown>;
}

export interface BatchFileLimits {
  /** Most requests in one input file. */
  maxRequests: number;
  /** Largest input file, in bytes. */
  maxBytes: number;
}

/**
 * The job id itself when a provider takes it as it is; else a stable hash of it. Either way a pure
 * function of the job id, so a resumed batch maps its lines back without a stored table.
 */
export function customIdFor(jobId: string): string {
  if (jobId.length <= MAX_CUSTOM_ID_LENGTH && /^[\x21-\x7e]+$/.test(jobId)) return jobId;
  return `hfq-${createHash('sha256').update(jobId).digest('hex').slice(0, 40)}`;
}

/** The endpoint a job's batch line targets, or undefined when its task has no batch route. */
export function batchEndpointFor(job: Job): string | undefined {
  return BATCH_ENDPOINT_BY_TASK[job.task];
}

/**
 * One job as a batch request: the real-time body with `model` set to the provider's model id.
 * Throws for a task with no batch route (the planner never sends one).
 */
export function batchRequestFor(jobId: string, job: Job, providerModelId: string): BatchRequest {
  const customId = customIdFor(jobId);
  switch (job.task) {
    case 'chat-completion':
      return {
        jobId,
        customId,
        endpoint: '/v1/chat/completions',
        body: { ...(job.parameters ?? {}), model: providerModelId, messages: job.messages },
      };
    case 'feature-extraction':
      return {
        jobId,
        customId,
        endpoint: '/v1/embeddings',
        body: { ...(job.parameters ?? {}), model: providerModelId, input: job.inputs },
      };
    default:
      throw new Error(`task ${job.task} has no batch route`);
  }
}

/** The JSONL line of a request (`method` and `url` too, which OpenAI requires and others accept). */
export function jsonlLine(request: BatchRequest): string {
  return `${JSON.stringify({
    custom_id: request.customId,
    method: 'POST',
    url: request.endpoint,
    body: request.body,
  })}\n`;
}

/**
 * Split requests into input files within `limits`, in order. A single line over `maxBytes`, or
 * requests for two endpoints in one call, is an error: the caller plans one endpoint per batch.
 */
export function splitIntoFiles(requests: readonly BatchRequest[], limits: BatchFileLimits): BatchRequest[][] {
  const endpoints = new Set(requests.map((request) => request.endpoint));
  if (endpoints.size > 1) throw new Error(`one batch serves one endpoint, got ${[...endpoints].join(', ')}`);
  const files: BatchRequest[][] = [];
  let current: BatchRequest[] = [];
  let bytes = 0;
  for (const request of requests) {
    const size = Buffer.byteLength(jsonlLine(request));
    if (size > limits.maxBytes) {
      throw new Error(
        `the request of job ${request.jobId} is ${size} bytes, over the ${limits.maxBytes}-byte file limit`,
      );
    }
    if (current.length >= limits.maxRequests || bytes + size > limits.maxBytes) {
      files.push(current);
      current = [];
      bytes = 0;
    }
    current.push(request);
    bytes += size;
  }
  if (current.length > 0) files.push(current);
  return files;
}
