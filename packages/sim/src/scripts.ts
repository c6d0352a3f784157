/**
 * One-shot scripted answers: "the next N requests of token T answer X", so tests can force an
 * exact sequence. A script is consumed after authentication and before limits, credits and
 * faults, which it bypasses; a step with a 2xx status and no body is served normally.
 */
import type { FaultKind } from './recorder.js';

export type ScriptStep =
  | {
      status: number;
      /** A string is sent as is; anything else as JSON. @defaultValue the route's usual body for that status */
      body?: unknown;
      headers?: Record<string, string>;
      /** `Retry-After`: a number of seconds or a raw header value. */
      retryAfter?: number | string;
      /** Wait before answering. @defaultValue `0` */
      delayMs?: number;
    }
  | {
      fault: FaultKind;
      /** Wait before answering. @defaultValue `0` */
      delayMs?: number;
    };

/** Key that matches every caller, used when the caller's own queue is empty. */
export const ANY_CALLER = '*';

export class ScriptBook {
  private readonly queues = new Map<string, ScriptStep[]>();

  push(key: string, steps: readonly ScriptStep[]): void {
    const queue = this.queues.get(key) ?? [];
    queue.push(...steps);
    this.queues.set(key, queue);
  }

  /** Take the next step for `key`, else for any caller. */
  next(key: string): ScriptStep | undefined {
    return this.queues.get(key)?.shift() ?? this.queues.get(ANY_CALLER)?.shift();
  }
}
