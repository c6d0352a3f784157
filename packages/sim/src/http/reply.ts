/** The answer to a request as plain data, and the node:http plumbing that sends and reads bodies. */
import { Buffer } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** @defaultValue `application/json` when there is a body */
  contentType?: string;
  body?: string | Uint8Array;
}

export const JSON_TYPE = 'application/json';

export function jsonReply(status: number, value: unknown, headers?: Record<string, string>): Reply {
  return { status, body: JSON.stringify(value), contentType: JSON_TYPE, ...(headers ? { headers } : {}) };
}

/** `{"error":"<message>"}`, the router's usual error shape. */
export function errorReply(status: number, message: string, headers?: Record<string, string>): Reply {
  return jsonReply(status, { error: message }, headers);
}

/** Write `reply` unless the client is already gone. Returns whether it was written. */
export function sendReply(
  res: ServerResponse,
  reply: Reply,
  baseHeaders: Record<string, string> = {},
): boolean {
  if (res.destroyed || res.headersSent) return false;
  const body = reply.body === undefined ? undefined : Buffer.from(reply.body);
  res.statusCode = reply.status;
  for (const [name, value] of Object.entries({ ...baseHeaders, ...reply.headers }))
    res.setHeader(name, value);
  if (body) {
    res.setHeader('content-type', reply.contentType ?? JSON_TYPE);
    res.setHeader('content-length', body.length);
  }
  res.end(body);
  return true;
}

export class BodyTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`request body over ${maxBytes} bytes`);
  }
}

export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > maxBytes) throw new BodyTooLargeError(maxBytes);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/** Parse a JSON body; `undefined` if it is not JSON. */
export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
