import { scrubSecrets } from '@hfq/shared/internal';
import type { RequestHandler } from 'express';

/**
 * Secrets never reach the board. Job data and results go through Bull Board's formatters; the
 * rest of a job as Bull Board shows it (failedReason, stack trace, options, logs) is shown raw,
 * and hfq never writes a secret there (the worker scrubs every error it throws). As a second
 * defence, every JSON answer of the board's API is scrubbed on its way out.
 */

const MAX_DEPTH = 64;

/** A copy of `value` with every string scrubbed (known secrets, `hf_…` tokens, bearer credentials). */
export function scrubDeep(value: unknown, known: readonly string[], depth = 0): unknown {
  if (typeof value === 'string') return scrubSecrets(value, known);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (Array.isArray(value)) return value.map((item) => scrubDeep(item, known, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value))
    out[scrubSecrets(key, known)] = scrubDeep(item, known, depth + 1);
  return out;
}

/** Express middleware: every `res.json(body)` below it sends `scrubDeep(body)`. */
export function scrubJsonResponses(known: readonly string[]): RequestHandler {
  return (_req, res, next) => {
    const json = res.json.bind(res);
    res.json = (body?: unknown) => json(scrubDeep(body, known));
    next();
  };
}
