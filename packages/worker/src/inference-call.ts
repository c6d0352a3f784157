import {
  type HfqError,
  type Job,
  MalformedOutputError,
  PermanentUpstreamError,
  TransientUpstreamError,
  type UpstreamUrls,
} from '@hfq/shared';
import { classifyUpstream, type UpstreamAnswer } from '@hfq/shared/internal';
import {
  InferenceClient,
  InferenceClientHubApiError,
  InferenceClientInputError,
  InferenceClientProviderApiError,
  InferenceClientProviderOutputError,
  InferenceClientRoutingError,
} from '@huggingface/inference';
import { type CapturedResponse, createUpstreamFetch, OversizedResponseError } from './upstream-fetch.js';

/**
 * One inference request through the official client: the job's task method, with
 * `retry_on_error: false` (its own 503 retry is instant and endless), a fetch pointed at the
 * configured upstream, and every failure turned into a classified `HfqError`.
 */

export interface CallRoute {
  /** Who is called, and so how its answers are classified (`errors.ts`): the router, a provider, an Inference Endpoint. */
  route: UpstreamAnswer['route'];
  /** HF token on the router and an endpoint, the provider's key in direct mode. */
  credential: string;
  /** Explicit provider, or undefined/'auto' to let the router choose (router only). */
  provider: string | undefined;
  /** Organisation to bill; sent on the router only, never to a provider. */
  billTo: string | undefined;
}

export interface CallOutcome {
  output: unknown;
  provider: string;
  headers: Headers | undefined;
  latencyMs: number;
}

export class CallFailure extends Error {
  constructor(
    readonly error: HfqError,
    readonly response: CapturedResponse | undefined,
    readonly body: string,
  ) {
    super(error.message);
    this.name = 'CallFailure';
  }
}

export interface CallOptions {
  upstream: UpstreamUrls;
  signal: AbortSignal;
  timeoutMs: number;
  maxBodyBytes: number;
  maxBinaryBytes: number;
  /** Called with `performance.now()` as the inference request leaves (not for Hub lookups). */
  onSend?: (atMs: number) => void;
  /** Call this Inference Endpoint (the client's `endpointUrl`) instead of the router or a provider. */
  endpointUrl?: string;
  /** Extra request headers for the inference call (an endpoint's `X-Scale-Up-Timeout`). */
  headers?: Record<string, string>;
}

/**
 * One client per credential and billing organisation, made once: making one binds every task
 * method of the library, a measurable share of a job's CPU at volume (bench:load). The fetch that
 * captures this call's response is passed with each call (per-call options override the client's).
 */
const clients = new Map<string, InferenceClient>();

function clientFor(route: CallRoute): InferenceClient {
  const billTo = route.route === 'hf-router' ? route.billTo : undefined;
  const key = `${route.route}\n${billTo ?? ''}\n${route.credential}`;
  let client = clients.get(key);
  if (!client) {
    client = new InferenceClient(route.credential, { retry_on_error: false, ...(billTo ? { billTo } : {}) });
    clients.set(key, client);
  }
  return client;
}

export async function callInference(job: Job, route: CallRoute, options: CallOptions): Promise<CallOutcome> {
  const { fetch, captured } = createUpstreamFetch(
    options.upstream,
    options.maxBodyBytes,
    options.onSend,
    options.headers,
  );
  const client = clientFor(route);
  // One controller and one timer per call: AbortSignal.any over AbortSignal.timeout cost every
  // request two transferable signals and a composite (bench:load).
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException('upstream request timed out', 'TimeoutError')),
    options.timeoutMs,
  );
  const onAbort = () => controller.abort(options.signal.reason);
  if (options.signal.aborted) onAbort();
  else options.signal.addEventListener('abort', onAbort, { once: true });
  const signal = controller.signal;
  const requestOptions = { signal, fetch };
  const provider = route.provider as 'auto' | undefined;
  const started = performance.now();
  try {
    const output = await runTask(
      client,
      job,
      provider,
      requestOptions,
      options.maxBinaryBytes,
      options.endpointUrl,
    );
    const headers = captured.last?.headers;
    return {
      output,
      provider: headers?.get('x-inference-provider') ?? route.provider ?? 'auto',
      headers,
      latencyMs: Math.round(performance.now() - started),
    };
  } catch (err) {
    throw toFailure(err, captured.last, route, signal);
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener('abort', onAbort);
  }
}

type Options = { signal: AbortSignal; fetch: typeof fetch };

async function runTask(
  client: InferenceClient,
  job: Job,
  provider: 'auto' | undefined,
  options: Options,
  maxBinaryBytes: number,
  endpointUrl?: string,
): Promise<unknown> {
  // An endpoint serves its own model: the client refuses a provider beside `endpointUrl`.
  const base = endpointUrl ? { model: job.model, endpointUrl } : { model: job.model, provider };
  switch (job.task) {
    case 'chat-completion':
      return client.chatCompletion(
        { ...base, ...(job.parameters ?? {}), messages: job.messages } as Parameters<
          InferenceClient['chatCompletion']
        >[0],
        options,
      );
    case 'feature-extraction':
      return client.featureExtraction({ ...base, inputs: job.inputs, ...(job.parameters ?? {}) }, options);
    case 'sentence-similarity':
      return client.sentenceSimilarity({ ...base, inputs: job.inputs, ...(job.parameters ?? {}) }, options);
    case 'text-classification':
      return client.textClassification({ ...base, inputs: job.inputs, parameters: job.parameters }, options);
    case 'text-generation':
      return client.textGeneration({ ...base, inputs: job.inputs, parameters: job.parameters }, options);
    case 'summarization':
      return client.summarization({ ...base, inputs: job.inputs, parameters: job.parameters }, options);
    case 'translation':
      return client.translation({ ...base, inputs: job.inputs, parameters: job.parameters }, options);
    case 'text-to-image': {
      const blob = await client.textToImage(
        { ...base, inputs: job.inputs, parameters: job.parameters },
        { ...options, outputType: 'blob' },
      );
      return binaryOutput(blob, maxBinaryBytes);
    }
  }
}

/** A Blob does not survive JSON: keep it as `{ contentType, base64 }`, capped in size. */
async function binaryOutput(blob: Blob, maxBytes: number): Promise<{ contentType: string; base64: string }> {
  if (blob.size > maxBytes) {
    throw new MalformedOutputError(`image of ${blob.size} bytes is larger than the ${maxBytes}-byte cap`, {});
  }
  const bytes = Buffer.from(await blob.arrayBuffer());
  return { contentType: blob.type || 'application/octet-stream', base64: bytes.toString('base64') };
}

function bodyText(body: unknown): string {
  if (typeof body === 'string') return body;
  try {
    return JSON.stringify(body) ?? '';
  } catch {
    return '';
  }
}

function toFailure(
  err: unknown,
  response: CapturedResponse | undefined,
  route: CallRoute,
  signal: AbortSignal,
): CallFailure {
  const provider = response?.headers.get('x-inference-provider') ?? route.provider;
  if (err instanceof CallFailure) return err;
  if (err instanceof InferenceClientProviderApiError || err instanceof InferenceClientHubApiError) {
    const status = err.httpResponse.status;
    const body = bodyText(err.httpResponse.body);
    if (status >= 200 && status < 300) {
      const info = { status, requestId: err.httpResponse.requestId || undefined, provider };
      return new CallFailure(
        new MalformedOutputError(`malformed upstream answer: ${err.message}`, info),
        response,
        body,
      );
    }
    const classified = classifyUpstream({
      status,
      body: body || err.message,
      requestId: err.httpResponse.requestId || response?.headers.get('x-request-id') || undefined,
      provider,
      route: route.route,
      source: err instanceof InferenceClientHubApiError ? 'hub' : undefined,
    });
    return new CallFailure(classified, response, body);
  }
  if (err instanceof InferenceClientProviderOutputError) {
    return new CallFailure(
      new MalformedOutputError(`malformed upstream answer: ${err.message}`, { provider }),
      response,
      '',
    );
  }
  if (err instanceof InferenceClientInputError || err instanceof InferenceClientRoutingError) {
    const message = err.message;
    if (/not been able to find inference provider|not supported for task/i.test(message)) {
      return new CallFailure(new PermanentUpstreamError(message, { provider }), response, message);
    }
    return new CallFailure(
      new PermanentUpstreamError(`request rejected by the client: ${message}`, { provider }),
      response,
      '',
    );
  }
  if (err instanceof MalformedOutputError) return new CallFailure(err, response, '');
  if (err instanceof OversizedResponseError || (err as Error)?.cause instanceof OversizedResponseError) {
    return new CallFailure(new MalformedOutputError((err as Error).message, { provider }), response, '');
  }
  if (signal.aborted) {
    const reason = signal.reason as Error | undefined;
    const what = reason?.name === 'TimeoutError' ? 'upstream request timed out' : 'upstream request aborted';
    return new CallFailure(new TransientUpstreamError(what, { provider }), response, '');
  }
  if (err instanceof SyntaxError) {
    return new CallFailure(
      new MalformedOutputError(`malformed upstream answer: ${err.message}`, { provider }),
      response,
      '',
    );
  }
  const message = (err as Error)?.message ?? String(err);
  const cause = ((err as Error)?.cause as Error | undefined)?.message;
  return new CallFailure(
    new TransientUpstreamError(`connection error: ${message}${cause ? ` (${cause})` : ''}`, { provider }),
    response,
    '',
  );
}
