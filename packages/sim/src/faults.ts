/**
 * Random failures: which one (if any) a request draws, and how each is put on the wire.
 * Faults hit admitted requests only, after limits and credits.
 */
import { Buffer } from 'node:buffer';
import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { FaultConfig } from './config.js';
import { errorReply, JSON_TYPE, type Reply, sendReply } from './http/reply.js';
import type { FaultKind } from './recorder.js';
import { htmlErrorPage, INTERNAL_SERVER_ERROR, modelLoadingBody, SERVICE_UNAVAILABLE } from './texts.js';

export const FAULT_KINDS: readonly FaultKind[] = [
  'error5xx',
  'overloaded',
  'garbage',
  'html',
  'truncated-json',
  'oversized',
  'hang',
  'reset',
];

function rates(faults: FaultConfig): Array<[FaultKind, number]> {
  return [
    ['error5xx', faults.error5xxRate],
    ['overloaded', faults.overloadedRate],
    ['garbage', faults.garbageRate],
    ['html', faults.htmlRate],
    ['truncated-json', faults.truncatedJsonRate],
    ['oversized', faults.oversizedRate],
    ['hang', faults.hangRate],
    ['reset', faults.resetRate],
  ];
}

/** One uniform draw against the cumulative rates (in the order above); null = no fault. */
export function drawFault(faults: FaultConfig, random: () => number): FaultKind | null {
  const table = rates(faults);
  if (table.every(([, rate]) => rate <= 0)) return null;
  const draw = random();
  let cumulative = 0;
  for (const [kind, rate] of table) {
    cumulative += Math.max(0, rate);
    if (draw < cumulative) return kind;
  }
  return null;
}

export interface FaultContext {
  faults: FaultConfig;
  /** Model id used in the legacy loading message. */
  model: string;
  /** The success answer the fault replaces (truncated JSON cuts it). */
  success: Reply | null;
  headers: Record<string, string>;
}

/** Answer with `kind`. A hang answers nothing: the request ends when its socket closes. */
export async function sendFault(kind: FaultKind, res: ServerResponse, context: FaultContext): Promise<void> {
  const { faults, headers } = context;
  switch (kind) {
    case 'error5xx':
      sendReply(res, errorReply(500, INTERNAL_SERVER_ERROR), headers);
      return;
    case 'overloaded':
      sendReply(
        res,
        faults.overloadedStyle === 'loading'
          ? { status: 503, body: modelLoadingBody(context.model), contentType: JSON_TYPE }
          : { status: 503, body: SERVICE_UNAVAILABLE, contentType: 'text/plain; charset=utf-8' },
        headers,
      );
      return;
    case 'garbage':
      sendReply(
        res,
        { status: 200, body: '\u0000\u0001<<not json>> {"choices": [', contentType: JSON_TYPE },
        headers,
      );
      return;
    case 'html': {
      const status = faults.htmlStatus;
      const body = htmlErrorPage(status, STATUS_CODES[status] ?? 'Error');
      sendReply(res, { status, body, contentType: 'text/html; charset=utf-8' }, headers);
      return;
    }
    case 'truncated-json': {
      const full = context.success?.body ?? JSON.stringify({ error: INTERNAL_SERVER_ERROR });
      const text = typeof full === 'string' ? full : Buffer.from(full).toString('utf8');
      sendReply(res, { status: 200, body: text.slice(0, Math.max(1, Math.floor(text.length / 2))) }, headers);
      return;
    }
    case 'oversized':
      await writeOversized(res, faults.oversizedBytes, headers);
      return;
    case 'hang':
      return;
    case 'reset':
      res.socket?.destroy();
      return;
  }
}

const CHUNK = Buffer.alloc(64 * 1024, 'x');

// A valid JSON object of exactly `bytes` bytes, streamed with backpressure.
async function writeOversized(
  res: ServerResponse,
  bytes: number,
  headers: Record<string, string>,
): Promise<void> {
  if (res.destroyed) return;
  const prefix = '{"padding":"';
  const suffix = '"}';
  const total = Math.max(bytes, prefix.length + suffix.length);
  res.writeHead(200, { ...headers, 'content-type': JSON_TYPE, 'content-length': total });
  res.write(prefix);
  let left = total - prefix.length - suffix.length;
  while (left > 0 && !res.destroyed) {
    const piece = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
    left -= piece.length;
    if (!res.write(piece)) await drained(res);
  }
  if (!res.destroyed) res.end(suffix);
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}
