/** Answering a scripted step (see `scripts.ts`). */
import { STATUS_CODES } from 'node:http';
import type { Caller } from '../auth.js';
import { creditsExhaustedReply } from '../billing.js';
import type { ThrottleTarget } from '../config.js';
import { errorReply, JSON_TYPE, jsonReply, type Reply } from '../http/reply.js';
import type { ScriptStep } from '../scripts.js';
import type { SimState } from '../state.js';
import {
  INTERNAL_SERVER_ERROR,
  INVALID_CREDENTIALS,
  PROVIDER_UNAUTHORIZED,
  SERVICE_UNAVAILABLE,
} from '../texts.js';
import { throttleBody } from '../throttle.js';
import { type Exchange, send } from './exchange.js';
import { answerFault } from './fault-answer.js';

export interface ScriptContext {
  target: ThrottleTarget;
  caller: Caller;
  model: string;
  /** The normal success answer, when the request could be served (truncated JSON cuts it). */
  success: Reply | null;
}

/** A 2xx step without a body lets the request be served normally. */
export function passesThrough(step: ScriptStep): boolean {
  return 'status' in step && step.status >= 200 && step.status < 300 && step.body === undefined;
}

export async function answerScript(
  state: SimState,
  exchange: Exchange,
  step: ScriptStep,
  context: ScriptContext,
): Promise<void> {
  if (step.delayMs && !(await state.sleep(step.delayMs))) return;
  if ('fault' in step) {
    await answerFault(state, exchange, step.fault, context.caller, context.model, context.success);
    return;
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(step.headers ?? {})) headers[name.toLowerCase()] = value;
  if (step.retryAfter !== undefined) headers['retry-after'] = String(step.retryAfter);
  const reply =
    step.body === undefined
      ? defaultReply(state, step.status, step.retryAfter, context)
      : bodyReply(step.status, step.body);
  send(exchange, { ...reply, headers: { ...reply.headers, ...headers } });
}

function bodyReply(status: number, body: unknown): Reply {
  if (typeof body !== 'string') return jsonReply(status, body);
  let isJson = true;
  try {
    JSON.parse(body);
  } catch {
    isJson = false;
  }
  return { status, body, contentType: isJson ? JSON_TYPE : 'text/plain; charset=utf-8' };
}

// The body the route would send with this status on its own.
function defaultReply(
  state: SimState,
  status: number,
  retryAfter: number | string | undefined,
  context: ScriptContext,
): Reply {
  const { target, caller } = context;
  switch (status) {
    case 429: {
      const waitMs = typeof retryAfter === 'number' ? retryAfter * 1000 : 1000;
      return jsonReply(429, throttleBody(state.throttleStyleFor(target, caller).body, 'requests', waitMs));
    }
    case 402:
      return creditsExhaustedReply(target, caller.policy.credits);
    case 401:
      return target === 'router'
        ? errorReply(401, INVALID_CREDENTIALS)
        : jsonReply(401, PROVIDER_UNAUTHORIZED[target]);
    case 500:
      return errorReply(500, INTERNAL_SERVER_ERROR);
    case 503:
      return { status: 503, body: SERVICE_UNAVAILABLE, contentType: 'text/plain; charset=utf-8' };
    default:
      return errorReply(status, STATUS_CODES[status] ?? 'Error');
  }
}
