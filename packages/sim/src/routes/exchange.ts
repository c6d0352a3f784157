/** One request being answered: the node:http pair, its log record, and headers every answer carries. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Reply, sendReply } from '../http/reply.js';
import type { RequestRecord } from '../recorder.js';

export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Filled in as the request is understood; logged when the response closes. */
  record: RequestRecord;
  /** Sent on every answer (`x-request-id`, and on the router `x-inference-provider`). */
  headers: Record<string, string>;
}

export function send(exchange: Exchange, reply: Reply): boolean {
  return sendReply(exchange.res, reply, exchange.headers);
}

export function header(exchange: Exchange, name: string): string | null {
  const value = exchange.req.headers[name.toLowerCase()];
  return typeof value === 'string' ? value : (value?.[0] ?? null);
}
