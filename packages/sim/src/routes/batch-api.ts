/**
 * `/providers/{together|cerebras}/v1/files…` and `/v1/batches…`: the providers' batch API, in the
 * provider's shape (`batches/batch-shapes.ts`). Keys are checked as on the real-time API (401),
 * and a key whose credits are spent gets the provider's 402 for new files and batches.
 *
 *   POST v1/files | v1/files/upload          multipart: purpose, file (Together: file_name)
 *   GET  v1/files/{id}[/content]
 *   POST v1/batches                          { input_file_id, endpoint, completion_window, metadata }
 *   GET  v1/batches[/{id}]
 *   POST v1/batches/{id}/cancel
 */
import { Buffer } from 'node:buffer';
import { identify, isAccepted } from '../auth.js';
import type { BatchAnswerDelays } from '../batches/batch-config.js';
import { BATCH_ENDPOINTS, parseInputLines } from '../batches/batch-lines.js';
import { batchJson, fileJson, resultLine } from '../batches/batch-shapes.js';
import type { BatchOwner, SimBatch, SimBatchStore, SimFile } from '../batches/batch-store.js';
import { billingAccount, creditsExhaustedReply } from '../billing.js';
import type { DirectProviderName } from '../config.js';
import { BodyTooLargeError, isRecord, jsonReply, parseJson, type Reply, readBody } from '../http/reply.js';
import type { SimState } from '../state.js';
import { PROVIDER_UNAUTHORIZED } from '../texts.js';
import { type Exchange, header, send } from './exchange.js';

const PURPOSES = new Set(['batch', 'batch-api']);
const MULTIPART_OVERHEAD = 64 * 1024;
const MAX_JSON_BODY = 1024 * 1024;

/** Is `route` (the path after the provider) part of the batch API? */
export function isBatchApiRoute(route: string): boolean {
  return (
    route === 'v1/files' ||
    route.startsWith('v1/files/') ||
    route === 'v1/batches' ||
    route.startsWith('v1/batches/')
  );
}

const invalid = (status: number, message: string): Reply =>
  jsonReply(status, { error: { message, type: 'invalid_request_error', param: null, code: null } });

export async function handleBatchApi(
  state: SimState,
  exchange: Exchange,
  provider: DirectProviderName,
  route: string,
): Promise<void> {
  const caller = identify(header(exchange, 'authorization') ?? undefined, state.config);
  exchange.record.tokenLabel = caller.label;
  exchange.record.authorizationKind = caller.kind;
  const allowedHere = !caller.policy.providers || caller.policy.providers.includes(provider);
  if (caller.kind !== 'provider-key' || !isAccepted(caller, state.config) || !allowedHere) {
    send(exchange, jsonReply(401, PROVIDER_UNAUTHORIZED[provider]));
    return;
  }
  const billing = billingAccount(state.config, caller, provider, null);
  if ('refused' in billing) {
    send(exchange, billing.refused);
    return;
  }
  const owner: BatchOwner = {
    id: caller.id,
    label: caller.label,
    account: billing.account,
    ledgerLabel: billing.label,
    credits: billing.credits,
  };
  const method = exchange.req.method ?? 'GET';
  const store = state.batches;
  const parts = route.split('/').slice(1); // after `v1`
  const [collection, id, action] = parts;

  const spent = (): boolean => {
    if (!owner.credits || state.credits.hasBalance(owner.account, owner.ledgerLabel, owner.credits))
      return false;
    send(exchange, creditsExhaustedReply(provider, owner.credits));
    return true;
  };

  if (collection === 'files' && method === 'POST' && (id === undefined || (id === 'upload' && !action))) {
    if (!spent()) await upload(state, exchange, provider, owner);
    return;
  }
  if (collection === 'files' && method === 'GET' && id && (!action || action === 'content')) {
    const file = store.file(id, owner.id, provider);
    if (!file) send(exchange, invalid(404, `No such File object: ${id}`));
    else if (!action) send(exchange, jsonReply(200, fileJson(file)));
    else await sendHeldBack(state, exchange, 'download', fileContent(store, file));
    return;
  }
  if (collection === 'batches' && method === 'POST' && id === undefined) {
    if (!spent()) await create(state, exchange, provider, owner);
    return;
  }
  if (collection === 'batches' && method === 'GET' && id === undefined) {
    const all = store.list(owner.id, provider);
    if (state.config.batchApi.style[provider] === 'together') {
      send(
        exchange,
        jsonReply(
          200,
          all.map((batch) => batchJson(batch)),
        ),
      );
      return;
    }
    send(exchange, jsonReply(200, listPage(all, exchange.url.searchParams)));
    return;
  }
  if (
    collection === 'batches' &&
    id &&
    (method === 'GET' ? !action : action === 'cancel' && method === 'POST')
  ) {
    const batch = store.batch(id, owner.id, provider);
    if (!batch) {
      send(exchange, invalid(404, `No batch found with id '${id}'`));
      return;
    }
    if (action === 'cancel') store.cancel(batch);
    send(exchange, jsonReply(200, batchJson(batch, action === 'cancel')));
    return;
  }
  send(exchange, invalid(404, 'Not Found'));
}

/** OpenAI's cursor pages: `limit` (1..100, default 20) batches after the one named by `after`. */
/** A successful answer, sent after `batchApi.answerDelayMs[step]` (the work is already done). */
async function sendHeldBack(
  state: SimState,
  exchange: Exchange,
  step: keyof BatchAnswerDelays,
  reply: Reply,
): Promise<void> {
  const delayMs = state.config.batchApi.answerDelayMs[step];
  if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
  send(exchange, reply);
}

function listPage(all: SimBatch[], query: URLSearchParams): Record<string, unknown> {
  const limit = Math.min(100, Math.max(1, Number(query.get('limit') ?? 20) || 20));
  const after = query.get('after');
  const start = after ? all.findIndex((batch) => batch.id === after) + 1 : 0;
  const page = all.slice(start, start + limit).map((batch) => batchJson(batch));
  return {
    object: 'list',
    data: page,
    first_id: page[0]?.id ?? null,
    last_id: page.at(-1)?.id ?? null,
    has_more: start + limit < all.length,
  };
}

function fileContent(store: SimBatchStore, file: SimFile): Reply {
  const text =
    file.kind === 'input'
      ? (file.text ?? '')
      : store
          .fileLines(file)
          .map((line, index) => `${resultLine(line, index)}\n`)
          .join('');
  return { status: 200, body: text, contentType: 'application/jsonl' };
}

async function upload(
  state: SimState,
  exchange: Exchange,
  provider: DirectProviderName,
  owner: BatchOwner,
): Promise<void> {
  const { maxFileBytes } = state.config.batchApi;
  let raw: Buffer;
  try {
    raw = await readBody(exchange.req, maxFileBytes + MULTIPART_OVERHEAD);
  } catch (error) {
    if (error instanceof BodyTooLargeError)
      send(exchange, invalid(413, `File is larger than ${maxFileBytes} bytes`));
    else exchange.res.destroy();
    return;
  }
  const contentType = header(exchange, 'content-type') ?? '';
  let form: FormData;
  try {
    form = await new Response(new Uint8Array(raw), { headers: { 'content-type': contentType } }).formData();
  } catch {
    send(exchange, invalid(400, 'Expected a multipart/form-data body with `purpose` and `file`'));
    return;
  }
  const purpose = form.get('purpose');
  const file = form.get('file');
  if (typeof purpose !== 'string' || !PURPOSES.has(purpose)) {
    send(
      exchange,
      invalid(400, `purpose must be one of ${[...PURPOSES].join(', ')}, got ${JSON.stringify(purpose)}`),
    );
    return;
  }
  if (file === null || typeof file === 'string') {
    send(exchange, invalid(400, '`file` must be a file part'));
    return;
  }
  const bytes = Buffer.from(await file.arrayBuffer());
  if (bytes.length > maxFileBytes) {
    send(exchange, invalid(413, `File is larger than ${maxFileBytes} bytes`));
    return;
  }
  const named = form.get('file_name');
  const stored = state.batches.addFile({
    ownerId: owner.id,
    provider,
    purpose,
    filename: typeof named === 'string' && named !== '' ? named : file.name || 'input.jsonl',
    bytes: bytes.length,
    text: bytes.toString('utf8'),
    kind: 'input',
  });
  await sendHeldBack(state, exchange, 'upload', jsonReply(200, fileJson(stored)));
}

async function create(
  state: SimState,
  exchange: Exchange,
  provider: DirectProviderName,
  owner: BatchOwner,
): Promise<void> {
  let raw: Buffer;
  try {
    raw = await readBody(exchange.req, MAX_JSON_BODY);
  } catch {
    send(exchange, invalid(413, 'Request body too large'));
    return;
  }
  const body = parseJson(raw);
  if (!isRecord(body)) {
    send(exchange, invalid(400, 'Request body must be a JSON object'));
    return;
  }
  const { input_file_id: fileId, endpoint, completion_window: window, metadata } = body;
  const style = state.config.batchApi.style[provider];
  const file = typeof fileId === 'string' ? state.batches.file(fileId, owner.id, provider) : undefined;
  if (file?.kind !== 'input') {
    send(exchange, invalid(400, `input_file_id: no such file: ${JSON.stringify(fileId)}`));
    return;
  }
  if (typeof endpoint !== 'string' || !BATCH_ENDPOINTS[provider].includes(endpoint)) {
    send(exchange, invalid(400, `endpoint must be one of ${BATCH_ENDPOINTS[provider].join(', ')}`));
    return;
  }
  if (style === 'openai' ? window !== '24h' : window !== undefined && window !== '24h') {
    send(exchange, invalid(400, 'completion_window must be "24h"'));
    return;
  }
  if (metadata !== undefined && metadata !== null && !isStringRecord(metadata)) {
    send(exchange, invalid(400, 'metadata must be an object of strings'));
    return;
  }
  const lines = parseInputLines(file.text ?? '', endpoint, state.config.batchApi.maxRequestsPerFile);
  if (typeof lines === 'string') {
    send(exchange, invalid(400, lines));
    return;
  }
  const batch = state.batches.create({
    owner,
    provider,
    endpoint,
    inputFile: file,
    lines,
    metadata: (metadata as Record<string, string> | undefined) ?? null,
  });
  const json = batchJson(batch);
  await sendHeldBack(
    state,
    exchange,
    'create',
    jsonReply(200, style === 'together' ? { job: json, warning: null } : json),
  );
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return isRecord(value) && Object.values(value).every((item) => typeof item === 'string');
}
