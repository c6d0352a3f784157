import { createHash } from 'node:crypto';
import type { Job } from './job-schema.js';

/**
 * Content identity (see docs/architecture.md, 'Pay once'): a job's id derives from what it asks
 * the upstream for, so the same work enqueued twice (a re-run, a retry after a timeout, a second
 * producer) is one BullMQ job and one request. What counts: account, task, model, provider
 * (absent and `auto` are the same request), the inputs or messages, the parameters, and an
 * optional caller key. What does not: `metadata` (never sent upstream) and enqueue options.
 */

/** Version of the derivation, part of every id: a change of the rule never matches an old id. */
const CONTENT_ID_VERSION = 'c1';

/** Tasks whose output is drawn at random when the request samples (see `isSampling`). */
const GENERATIVE_TASKS: ReadonlySet<string> = new Set([
  'chat-completion',
  'text-generation',
  'text-to-image',
]);

/**
 * JSON with object keys sorted at every depth (arrays keep their order): the same value always
 * serialises to the same bytes, whatever order the caller wrote its keys in.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i += 1) out += (i > 0 ? ',' : '') + canonicalJson(value[i]);
    return `${out}]`;
  }
  // A plain loop: this runs for every enqueue (bench:reuse measures its cost).
  const record = value as Record<string, unknown>;
  let out = '{';
  for (const key of Object.keys(record).sort()) {
    const item = record[key];
    if (item === undefined) continue;
    out += `${out.length > 1 ? ',' : ''}${JSON.stringify(key)}:${canonicalJson(item)}`;
  }
  return `${out}}`;
}

/**
 * A generative job that asks for a random draw: each enqueue is new work, never deduplicated nor
 * answered from the result ledger. The rule: a `chat-completion`, `text-generation` or
 * `text-to-image` job whose parameters set `temperature` above 0 (or `do_sample: true`) and no
 * `seed`. A job with a `seed` is a repeatable draw: the seed is part of its identity, so a
 * changed seed is new work and the same seed is the same job. A job that sets no temperature is
 * treated as the same request each time (pass `unique: false` for a fresh draw at the
 * provider's default temperature).
 */
export function isSampling(job: Job): boolean {
  if (!GENERATIVE_TASKS.has(job.task)) return false;
  const parameters = (job as { parameters?: Record<string, unknown> }).parameters ?? {};
  if (parameters.seed !== undefined && parameters.seed !== null) return false;
  const temperature = parameters.temperature;
  return (typeof temperature === 'number' && temperature > 0) || parameters.do_sample === true;
}

/** What a job asks the upstream for: the fields its content id hashes (metadata left out). */
function requestContent(job: Job, key: string | undefined): Record<string, unknown> {
  const { metadata: _metadata, provider, ...asked } = job;
  return { ...asked, provider: provider ?? 'auto', ...(key !== undefined ? { key } : {}) };
}

/**
 * The job id content identity gives `job`: `c1-` and the SHA-256 (hex) of its canonical request
 * content. It passes BullMQ's id rules (no `:`, not only digits) and hfq's (at most 128 of
 * letters, digits, `_`, `.`, `-`). `key` tells apart jobs that ask for the same thing on purpose
 * (a caller's own key, such as a line number).
 */
export function contentJobId(job: Job, options: { key?: string } = {}): string {
  const digest = createHash('sha256')
    .update(canonicalJson(requestContent(job, options.key)))
    .digest('hex');
  return `${CONTENT_ID_VERSION}-${digest}`;
}
