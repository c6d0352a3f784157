import { ACCOUNT_REFUSED, ENDPOINT_PAUSED, MODEL_NOT_SUPPORTED, mentionsCredits } from './upstream-texts.js';

/**
 * How hfq reacts to a failure. One class per reaction, each with a stable `code`:
 * - `throttle`: the rate-limit domain pauses (for an Inference Endpoint, its slots); the job keeps
 *   its place; no attempt used.
 * - `credits`: HF credits are gone; the account fails over to a provider key, same job.
 * - `hold`: a credential cannot go on (revoked token, refused billTo, a provider key answering
 *   401/403): the router's gate holds (the account fails over or holds its queue), or that key's
 *   gate closes and the job fails over to the next key. For an Inference Endpoint (paused, or
 *   refusing the account), the endpoint alone is marked unavailable for a while: its jobs go to
 *   the router or wait, by routing policy; no attempt used.
 * - `retry`: transient (5xx but an endpoint's 503, timeout, connection); retried with backoff,
 *   consuming attempts.
 * - `fail`: the request itself is wrong (4xx, bad input); fails at once.
 *
 * An Inference Endpoint's answers (`route: 'endpoint'`) mean something of their own (see
 * docs/architecture.md, "Dedicated capacity"); none of these uses an attempt:
 * - 503 (`EndpointColdError`, `throttle`): it is scaling up from zero; its jobs wait for a slot
 *   while one request at a time wakes it.
 * - 400 "Invalid state" (`EndpointPausedError`, `hold`): it is paused.
 * - 401, 403, 402 or credit wording (`EndpointRefusedError`, `hold`): it refuses the account; the
 *   router's gate and the account's credits are not touched.
 * - 429 (`ThrottledError`, `throttle`): its serving container is at its concurrent-request limit;
 *   the endpoint's concurrency is lowered once per episode and the job waits for a slot.
 * Any other answer means what it means on the router: a 5xx retries, another 4xx fails.
 */
export type RetryClass = 'throttle' | 'credits' | 'hold' | 'retry' | 'fail';

export interface UpstreamErrorInfo {
  status?: number | undefined;
  requestId?: string | undefined;
  /** The upstream's message, trimmed; never a secret (tokens are scrubbed before it is stored). */
  upstreamMessage?: string | undefined;
  provider?: string | undefined;
}

export class HfqError extends Error {
  constructor(
    readonly code: string,
    readonly retryClass: RetryClass,
    message: string,
    readonly info: UpstreamErrorInfo = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class ThrottledError extends HfqError {
  constructor(message: string, info: UpstreamErrorInfo) {
    super('HFQ_THROTTLED', 'throttle', message, info);
  }
}
export class CreditsExhaustedError extends HfqError {
  constructor(message: string, info: UpstreamErrorInfo) {
    super('HFQ_CREDITS_EXHAUSTED', 'credits', message, info);
  }
}
export class AccountHeldError extends HfqError {
  constructor(message: string, info: UpstreamErrorInfo) {
    super('HFQ_ACCOUNT_HELD', 'hold', message, info);
  }
}
/** A provider key answered 401/403: that key's gate closes; the job fails over to the next key. */
export class KeyRefusedError extends HfqError {
  constructor(message: string, info: UpstreamErrorInfo) {
    super('HFQ_KEY_REFUSED', 'hold', message, info);
  }
}
/** The router refused one model (a gated or restricted repository): that job fails, the account goes on. */
export class ModelRefusedError extends HfqError {
  constructor(message: string, info: UpstreamErrorInfo) {
    super('HFQ_MODEL_REFUSED', 'fail', message, info);
  }
}
/** An Inference Endpoint answered 503: it is scaling up; its jobs wait while one request wakes it. */
export class EndpointColdError extends HfqError {
  constructor(message: string, info: UpstreamErrorInfo) {
    super('HFQ_ENDPOINT_COLD', 'throttle', message, info);
  }
}
/** An Inference Endpoint answered 400 "Invalid state": it is paused; its jobs go around it or wait. */
export class EndpointPausedError extends HfqError {
  constructor(message: string, info: UpstreamErrorInfo) {
    super('HFQ_ENDPOINT_PAUSED', 'hold', message, info);
  }
}
/** An Inference Endpoint refused the account (401, 403, 402 or credit wording): its jobs go around it or wait. */
export class EndpointRefusedError extends HfqError {
  constructor(message: string, info: UpstreamErrorInfo) {
    super('HFQ_ENDPOINT_REFUSED', 'hold', message, info);
  }
}
export class TransientUpstreamError extends HfqError {
  constructor(message: string, info: UpstreamErrorInfo) {
    super('HFQ_UPSTREAM_TRANSIENT', 'retry', message, info);
  }
}
export class PermanentUpstreamError extends HfqError {
  constructor(message: string, info: UpstreamErrorInfo) {
    super('HFQ_UPSTREAM_REJECTED', 'fail', message, info);
  }
}
export class ModelNotSupportedError extends HfqError {
  constructor(message: string, info: UpstreamErrorInfo) {
    super('HFQ_MODEL_NOT_SUPPORTED', 'fail', message, info);
  }
}
export class MalformedOutputError extends HfqError {
  constructor(message: string, info: UpstreamErrorInfo) {
    super('HFQ_MALFORMED_OUTPUT', 'fail', message, info);
  }
}

/** What the upstream answered, as hfq's custom fetch captured it (headers are not on the client's errors). */
export interface UpstreamAnswer {
  status: number;
  body: string;
  requestId?: string | undefined;
  provider?: string | undefined;
  /** Which route answered: the HF router, a provider's own API through a provider key, or an Inference Endpoint. */
  route: 'hf-router' | 'provider-key' | 'endpoint';
  /** `hub`: the answer is the Hub's model lookup the client makes before the call, not the call's. */
  source?: 'hub' | undefined;
}

/**
 * Classify an upstream HTTP answer that was not a success. Status and body together:
 * quota exhaustion can come back as 429 with credit wording, and a 402 is always credits.
 */
export function classifyUpstream(answer: UpstreamAnswer): HfqError {
  const { status, route } = answer;
  const info: UpstreamErrorInfo = {
    status,
    requestId: answer.requestId,
    upstreamMessage: upstreamMessage(answer.body),
    provider: answer.provider,
  };
  const where =
    answer.source === 'hub'
      ? 'the Hugging Face Hub (model lookup)'
      : route === 'provider-key'
        ? `provider ${answer.provider ?? ''}`.trim()
        : route === 'endpoint'
          ? 'Inference Endpoint'
          : 'Hugging Face router';
  const summary = `${where} answered ${status}${info.upstreamMessage ? `: ${info.upstreamMessage}` : ''}${
    info.requestId ? ` (request id ${info.requestId})` : ''
  }`;
  const credits =
    status === 402 || ((status === 429 || (status >= 400 && status < 500)) && mentionsCredits(answer.body));
  if (route === 'endpoint') {
    if (status === 503) return new EndpointColdError(summary, info);
    // Before credits: a paused endpoint's 400 is a pause whatever else it says.
    if (status === 400 && ENDPOINT_PAUSED.test(answer.body)) return new EndpointPausedError(summary, info);
    // The endpoint's own refusal: not the router's account hold, nor its credits.
    if (status === 401 || status === 403 || credits) return new EndpointRefusedError(summary, info);
  }
  if (credits) return new CreditsExhaustedError(summary, info);
  if (status === 429) return new ThrottledError(summary, info);
  // No such model (or a private one): the job's model id is what to fix, not the router.
  if (answer.source === 'hub' && status === 404)
    return new PermanentUpstreamError(
      `${summary}: the model does not exist on the Hub, or is private to another account`,
      info,
    );
  if (route === 'provider-key' && (status === 401 || status === 403))
    return new KeyRefusedError(summary, info);
  // The router: a bad token (401) or a 403 about the account holds it; a 403 about one model
  // (a gated repository) fails that model's jobs only, with the upstream's reason.
  if (status === 401) return new AccountHeldError(summary, info);
  if (status === 403) {
    return ACCOUNT_REFUSED.test(answer.body)
      ? new AccountHeldError(summary, info)
      : new ModelRefusedError(summary, info);
  }
  if (status === 400 && MODEL_NOT_SUPPORTED.test(answer.body))
    return new ModelNotSupportedError(summary, info);
  if (status === 408 || status === 425 || status >= 500) return new TransientUpstreamError(summary, info);
  return new PermanentUpstreamError(summary, info);
}

/** The upstream's own message from a JSON `{ error }`/`{ detail }`/`{ message }` body, else the text, trimmed. */
export function upstreamMessage(body: string): string | undefined {
  const text = body.trim();
  if (text === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    const found = pickMessage(parsed);
    if (found) return trimMessage(found);
  } catch {
    // not JSON: fall through to the text itself
  }
  if (/^\s*<(!doctype|html)/i.test(text)) return 'an HTML page instead of JSON';
  return trimMessage(text);
}

function pickMessage(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    for (const key of ['error', 'detail', 'message', 'error_type']) {
      const found = pickMessage(record[key]);
      if (found) return found;
    }
  }
  return undefined;
}

function trimMessage(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 500 ? `${flat.slice(0, 500)}…` : flat;
}
