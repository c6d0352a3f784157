/**
 * A batch's input file, read line by line into requests, and what each request will answer: the
 * same answer the real-time route gives for the same body (or its 400), a drawn failure share
 * answering 500, each at a drawn moment of the turnaround so lines finish in no fixed order.
 */
import type { DirectProviderName, SimConfig } from '../config.js';
import { isRecord } from '../http/reply.js';
import { OPERATIONS } from '../operations.js';
import { resolveProviderRoute } from '../routes/resolve.js';
import { INTERNAL_SERVER_ERROR } from '../texts.js';

/** The endpoints a batch may target, by provider (as the real-time API serves them). */
export const BATCH_ENDPOINTS: Record<DirectProviderName, readonly string[]> = {
  together: ['/v1/chat/completions', '/v1/embeddings'],
  cerebras: ['/v1/chat/completions'],
};

/** Longest `custom_id` accepted (Together documents 64). */
export const MAX_CUSTOM_ID_LENGTH = 64;

export interface InputLine {
  customId: string;
  body: Record<string, unknown>;
}

/** Read a JSONL input file; a string names the first problem (answered as a 400 at create). */
export function parseInputLines(text: string, endpoint: string, maxRequests: number): InputLine[] | string {
  const lines: InputLine[] = [];
  const seen = new Set<string>();
  const rows = text.split('\n');
  for (let index = 0; index < rows.length; index++) {
    const row = rows[index]?.trim() ?? '';
    if (row === '') continue;
    const where = `line ${index + 1}`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(row);
    } catch {
      return `${where} is not valid JSON`;
    }
    if (!isRecord(parsed)) return `${where} is not a JSON object`;
    const { custom_id: customId, body, url } = parsed;
    if (typeof customId !== 'string' || customId === '')
      return `${where}: custom_id must be a non-empty string`;
    if (customId.length > MAX_CUSTOM_ID_LENGTH)
      return `${where}: custom_id is longer than ${MAX_CUSTOM_ID_LENGTH} characters`;
    if (seen.has(customId))
      return `${where}: custom_id ${JSON.stringify(customId)} is not unique in the file`;
    if (!isRecord(body)) return `${where}: body must be a JSON object`;
    if (url !== undefined && url !== endpoint)
      return `${where}: url ${JSON.stringify(url)} does not match the batch endpoint ${endpoint}`;
    seen.add(customId);
    lines.push({ customId, body });
    if (lines.length > maxRequests)
      return `the input file has more than ${maxRequests} requests, the limit of one batch`;
  }
  if (lines.length === 0) return 'the input file has no requests';
  return lines;
}

/** One line's answer, as it will appear in the output (2xx) or error file. */
export interface LineOutcome {
  status: number;
  body: unknown;
  /** Input items, for the price (array inputs count each element). */
  items: number;
}

export interface PlannedLine extends InputLine {
  /** When the line finishes, in batch time since the batch was created (ms). */
  finishAtMs: number;
  outcome: LineOutcome;
}

export interface LinePlanContext {
  config: SimConfig;
  provider: DirectProviderName;
  endpoint: string;
  imageBaseUrl: string;
  random: () => number;
  /** Batch time at which lines start (after validating). */
  startMs: number;
  /** Turnaround; `Infinity` for a stuck batch. */
  turnaroundMs: number;
}

/** The answer of every line and the moment it finishes, sorted by that moment. */
export function planLines(lines: InputLine[], context: LinePlanContext): PlannedLine[] {
  const { config, provider, endpoint, random } = context;
  const planned = lines.map((line): PlannedLine => {
    // (0, 1]: a line finishes strictly after the batch starts, the last one at the turnaround at most.
    const share = 1 - random();
    const failed = random() < config.batchApi.failureShare;
    return {
      ...line,
      finishAtMs: context.startMs + share * context.turnaroundMs,
      outcome: failed
        ? { status: 500, body: { error: { message: INTERNAL_SERVER_ERROR, type: 'server_error' } }, items: 1 }
        : answer(line.body, context, config, provider, endpoint),
    };
  });
  return planned.sort((a, b) => a.finishAtMs - b.finishAtMs);
}

function answer(
  body: Record<string, unknown>,
  context: LinePlanContext,
  config: SimConfig,
  provider: DirectProviderName,
  endpoint: string,
): LineOutcome {
  const resolved = resolveProviderRoute(config, provider, endpoint.slice(1), body);
  if (!resolved.ok) return { status: resolved.reply.status, body: replyJson(resolved.reply.body), items: 1 };
  const operation = OPERATIONS[resolved.value.operation];
  const invalid = operation.invalid(body);
  if (invalid)
    return { status: 400, body: { error: { message: invalid, type: 'invalid_request_error' } }, items: 1 };
  const reply = operation.respond(body, {
    served: resolved.value.served,
    imageBaseUrl: context.imageBaseUrl,
  });
  return { status: reply.status, body: replyJson(reply.body), items: operation.items(body) };
}

function replyJson(body: string | Uint8Array | undefined): unknown {
  const text = typeof body === 'string' ? body : body ? Buffer.from(body).toString('utf8') : '';
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
