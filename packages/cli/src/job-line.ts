import { JOB, type Job } from '@hfq/shared';
import { inputHash } from './content-id.js';

/**
 * One line of an `hfq enqueue` input, in either format it reads (see README, "JSONL input"):
 *
 * - hfq's own: a job (`account`, `task`, `model`, `provider`, `inputs` or `messages`,
 *   `parameters`, `metadata`), plus the caller's `id` or `custom_id`;
 * - the OpenAI Batch format: `custom_id`, `method`, `url`, `body` (Together, Fireworks and
 *   Mistral files with only `custom_id` and `body` too). `/v1/chat/completions` becomes a
 *   chat-completion job, `/v1/embeddings` a feature-extraction job; `body.model` is the model
 *   (`org/name:provider` names the provider too), the rest of the body its parameters.
 *
 * The account is the line's own, else `defaultAccount` (HFQ_ACCOUNT); `--account` overrides both.
 */

export interface AccountChoice {
  /** `--account`: every line's account. */
  override?: string | undefined;
  /** HFQ_ACCOUNT: the account of a line that names none. */
  fallback?: string | undefined;
}

/** The caller's own id of a line, echoed in its result row under the key it came with. */
export type CallerId = { key: 'id' | 'custom_id'; value: string | number };

export type JobLine =
  | { ok: true; job: Job; callerId?: CallerId; metadata?: Record<string, unknown>; hash: string }
  | {
      ok: false;
      error: string;
      /** The line names no account and none was given: the summary hints at --account. */
      noAccount?: boolean;
      callerId?: CallerId;
      hash: string;
    };

/** A `custom_id` or `id` must be a string or a number (it is echoed, never interpreted). */
function callerIdOf(value: Record<string, unknown>): CallerId | string | undefined {
  for (const key of ['custom_id', 'id'] as const) {
    const v = value[key];
    if (v === undefined) continue;
    if ((typeof v === 'string' && v.length <= 512) || (typeof v === 'number' && Number.isFinite(v)))
      return { key, value: v };
    return `${key}: a string (at most 512 characters) or a number`;
  }
  return undefined;
}

const OPENAI_URLS: Record<string, 'chat-completion' | 'feature-extraction'> = {
  '/v1/chat/completions': 'chat-completion',
  '/v1/embeddings': 'feature-extraction',
};

/** Body fields that say how OpenAI answers, not what is asked: dropped. */
const OPENAI_DROPPED = new Set(['model', 'messages', 'input', 'encoding_format', 'user']);

/** An OpenAI Batch line as an hfq job (without account), or what is wrong with it. */
function fromOpenAi(value: Record<string, unknown>): Record<string, unknown> | string {
  const { method, url, body } = value;
  if (method !== undefined && method !== 'POST')
    return `method: only "POST" is supported, got ${JSON.stringify(method)}`;
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    return 'body: an object (the request body)';
  const b = body as Record<string, unknown>;
  let task: 'chat-completion' | 'feature-extraction' | undefined;
  if (url !== undefined) {
    task = typeof url === 'string' ? OPENAI_URLS[url] : undefined;
    if (!task)
      return `url: ${JSON.stringify(url)} is not supported (use ${Object.keys(OPENAI_URLS).join(' or ')})`;
  } else
    task =
      b.messages !== undefined ? 'chat-completion' : b.input !== undefined ? 'feature-extraction' : undefined;
  if (!task) return 'url: missing (and the body has neither messages nor input)';
  if (b.stream === true) return 'body.stream: streaming is not supported in a batch';
  if (typeof b.model !== 'string') return 'body.model: missing (the model id)';
  const [model, provider] = b.model.split(':', 2) as [string, string | undefined];
  const parameters = Object.fromEntries(
    Object.entries(b).filter(([k]) => !OPENAI_DROPPED.has(k) && k !== 'stream'),
  );
  const job: Record<string, unknown> = { task, model };
  if (provider !== undefined) job.provider = provider;
  if (task === 'chat-completion') job.messages = b.messages;
  else job.inputs = b.input;
  if (Object.keys(parameters).length > 0) job.parameters = parameters;
  for (const key of ['account', 'metadata']) if (value[key] !== undefined) job[key] = value[key];
  const extra = Object.keys(value).filter(
    (k) => !['custom_id', 'id', 'method', 'url', 'body', 'account', 'metadata'].includes(k),
  );
  if (extra.length > 0) return `${extra[0]}: not a field of an OpenAI Batch line`;
  return job;
}

function isOpenAiLine(value: Record<string, unknown>): boolean {
  return 'body' in value && !('task' in value);
}

/** Parse one line's text (`JSON.parse` errors included) into a job, or the line's error. */
export function parseJobLine(
  text: string,
  accounts: AccountChoice,
  options: { hash?: boolean } = {},
): JobLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `not JSON (${(err as Error).message})`, hash: inputHash(text) };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return { ok: false, error: '(root): a JSON object (one job per line)', hash: inputHash(text) };
  const record = value as Record<string, unknown>;
  const callerId = callerIdOf(record);
  const withId = typeof callerId === 'object' ? { callerId } : {};
  // The hash covers what the line says and the account it runs under.
  // A pass that only adds jobs needs no hash (`hash: false`).
  const hash =
    options.hash === false
      ? ''
      : inputHash({
          line: record,
          account: accounts.override ?? record.account ?? accounts.fallback ?? null,
        });
  if (typeof callerId === 'string') return { ok: false, error: callerId, hash };
  const { custom_id: _c, id: _i, ...rest } = record;
  const raw = isOpenAiLine(record) ? fromOpenAi(record) : rest;
  if (typeof raw === 'string') return { ok: false, error: raw, ...withId, hash };
  const account = accounts.override ?? raw.account ?? accounts.fallback;
  if (account === undefined) {
    return {
      ok: false,
      error: 'account: missing (name it on the line, or give --account A or HFQ_ACCOUNT)',
      noAccount: true,
      ...withId,
      hash,
    };
  }
  const parsed = JOB.safeParse({ ...raw, account });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, error: `${issue?.path.join('.') || '(root)'}: ${issue?.message}`, ...withId, hash };
  }
  const metadata = parsed.data.metadata;
  return { ok: true, job: parsed.data, ...withId, ...(metadata ? { metadata } : {}), hash };
}
