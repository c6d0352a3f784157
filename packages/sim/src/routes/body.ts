import { BodyTooLargeError, errorReply, isRecord, parseJson, readBody } from '../http/reply.js';
import { type Exchange, send } from './exchange.js';

const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** Read the JSON object body of an inference request; answers 400/413 itself and returns null on failure. */
export async function readJsonObject(exchange: Exchange): Promise<Record<string, unknown> | null> {
  let raw: Buffer;
  try {
    raw = await readBody(exchange.req, MAX_BODY_BYTES);
  } catch (error) {
    if (error instanceof BodyTooLargeError) send(exchange, errorReply(413, 'Request body too large'));
    else exchange.res.destroy();
    return null;
  }
  const body = parseJson(raw);
  if (!isRecord(body)) {
    send(exchange, errorReply(400, 'Request body must be a JSON object'));
    return null;
  }
  return body;
}
