/**
 * The HTTP client of a provider's batch API, on the user's own provider key: upload an input
 * file, create, get, list and cancel batches, download output and error files. Every failure is
 * an `HfqError` classified as the real-time route's (a 401/403 of the key is `KeyRefusedError`,
 * a 402 `CreditsExhaustedError`), and the key is scrubbed from everything it says.
 */
import { type HfqError, MalformedOutputError, TransientUpstreamError, type UpstreamUrls } from '@hfq/shared';
import { classifyUpstream, scrubSecrets } from '@hfq/shared/internal';
import type { BatchFileLimits } from './batch-requests.js';
import { type BatchPage, type BatchView, readBatchList, readBatchView } from './batch-view.js';

/** Pages a search of the key's batches reads at most (100 batches each). */
const MAX_LIST_PAGES = 50;

/** A provider's batch API: where it is and which shape it answers in. */
export interface BatchApiTarget {
  provider: string;
  /** The URL `/v1/files` and `/v1/batches` are appended to. */
  baseUrl: string;
  /** `together`: `/v1/files/upload` with `purpose=batch-api`; `openai`: `/v1/files` with `purpose=batch`. */
  style: 'openai' | 'together';
  limits: BatchFileLimits;
}

/** Providers whose batch API hfq knows (`reference/batch-apis.md`), with their public origins. */
const KNOWN_TARGETS: Record<string, Omit<BatchApiTarget, 'provider'> & { path?: string }> = {
  together: {
    baseUrl: 'https://api.together.xyz',
    style: 'together',
    limits: { maxRequests: 50_000, maxBytes: 100 * 1000 * 1000 },
  },
  groq: {
    baseUrl: 'https://api.groq.com',
    path: '/openai',
    style: 'openai',
    limits: { maxRequests: 50_000, maxBytes: 200 * 1000 * 1000 },
  },
};

/** The batch API of `provider`, at the configured upstream URL when one is set; undefined if it has none. */
export function batchApiTargetFor(provider: string, upstream: UpstreamUrls = {}): BatchApiTarget | undefined {
  const known = KNOWN_TARGETS[provider];
  if (!known) return undefined;
  const origin = upstream.providerUrls?.[provider] ?? known.baseUrl;
  return { provider, baseUrl: `${origin}${known.path ?? ''}`, style: known.style, limits: known.limits };
}

export interface BatchClientOptions {
  /** Per request. @defaultValue 60 s */
  timeoutMs?: number;
  /** @defaultValue the global fetch */
  fetch?: typeof fetch;
}

export interface UploadedFile {
  id: string;
  bytes: number | undefined;
}

export class ProviderBatchClient {
  readonly #key: string;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;

  constructor(
    readonly target: BatchApiTarget,
    key: string,
    options: BatchClientOptions = {},
  ) {
    this.#key = key;
    this.#fetch = options.fetch ?? fetch;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
  }

  async upload(jsonl: string, filename: string): Promise<UploadedFile> {
    const form = new FormData();
    const together = this.target.style === 'together';
    form.set('purpose', together ? 'batch-api' : 'batch');
    if (together) {
      form.set('file_name', filename);
      form.set('file_type', 'jsonl');
    }
    form.set('file', new Blob([jsonl], { type: 'application/jsonl' }), filename);
    const answer = await this.json('upload', together ? '/v1/files/upload' : '/v1/files', 'POST', form);
    const id = (answer as { id?: unknown } | null)?.id;
    if (typeof id !== 'string' || id === '') throw this.malformed('upload', 'file answer has no id');
    const bytes = (answer as { bytes?: unknown }).bytes;
    return { id, bytes: typeof bytes === 'number' ? bytes : undefined };
  }

  async create(inputFileId: string, endpoint: string, metadata: Record<string, string>): Promise<BatchView> {
    const body = JSON.stringify({ input_file_id: inputFileId, endpoint, completion_window: '24h', metadata });
    return this.view('create', await this.json('create', '/v1/batches', 'POST', body));
  }

  async get(batchId: string): Promise<BatchView> {
    return this.view('get', await this.json('get', `/v1/batches/${encodeURIComponent(batchId)}`, 'GET'));
  }

  /** One page of the key's batches, newest first (100 at most), after the batch `after`. */
  async list(after?: string): Promise<BatchPage> {
    const cursor = after ? `&after=${encodeURIComponent(after)}` : '';
    const answer = await this.json('list', `/v1/batches?limit=100${cursor}`, 'GET');
    try {
      return readBatchList(answer);
    } catch (error) {
      throw this.malformed('list', (error as Error).message);
    }
  }

  /**
   * The newest of the key's batches that `matches`, looking back page by page until the batches
   * are older than `sinceSec` (unix seconds) or there are no more.
   */
  async find(matches: (batch: BatchView) => boolean, sinceSec: number): Promise<BatchView | undefined> {
    let after: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const { batches, hasMore, lastId } = await this.list(after);
      const found = batches.find(matches);
      if (found) return found;
      const oldest = batches.at(-1)?.createdAtSec;
      if (!hasMore || !lastId || (oldest !== undefined && oldest < sinceSec)) return undefined;
      after = lastId;
    }
    return undefined;
  }

  async cancel(batchId: string): Promise<BatchView> {
    const path = `/v1/batches/${encodeURIComponent(batchId)}/cancel`;
    return this.view('cancel', await this.json('cancel', path, 'POST'));
  }

  /** An output or error file's JSONL. */
  async download(fileId: string): Promise<string> {
    const response = await this.send('download', `/v1/files/${encodeURIComponent(fileId)}/content`, 'GET');
    return this.read('download', response);
  }

  private view(step: string, answer: unknown): BatchView {
    try {
      return readBatchView(answer);
    } catch (error) {
      throw this.malformed(step, (error as Error).message);
    }
  }

  private async json(step: string, path: string, method: string, body?: BodyInit): Promise<unknown> {
    const response = await this.send(step, path, method, body);
    const text = await this.read(step, response);
    try {
      return JSON.parse(text);
    } catch {
      throw this.malformed(step, 'answer is not JSON');
    }
  }

  private async send(step: string, path: string, method: string, body?: BodyInit): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#key}` };
    if (typeof body === 'string') headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await this.#fetch(`${this.target.baseUrl}${path}`, {
        method,
        headers,
        body: body ?? null,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      const reason =
        (error as Error)?.name === 'TimeoutError' ? 'timed out' : String((error as Error)?.message);
      throw new TransientUpstreamError(
        this.scrub(`batch API ${step} at ${this.target.provider}: ${reason}`),
        {
          provider: this.target.provider,
        },
      );
    }
    if (response.ok) return response;
    const text = await response.text().catch(() => '');
    throw this.refused(step, response, text);
  }

  private async read(step: string, response: Response): Promise<string> {
    try {
      return await response.text();
    } catch (error) {
      throw new TransientUpstreamError(
        this.scrub(
          `batch API ${step} at ${this.target.provider}: answer cut off (${(error as Error).message})`,
        ),
        { provider: this.target.provider },
      );
    }
  }

  private refused(step: string, response: Response, body: string): HfqError {
    const error = classifyUpstream({
      status: response.status,
      body: this.scrub(body),
      requestId: response.headers.get('x-request-id') ?? undefined,
      provider: this.target.provider,
      route: 'provider-key',
    });
    error.message = `batch API ${step}: ${error.message}`;
    return error;
  }

  private malformed(step: string, what: string): MalformedOutputError {
    return new MalformedOutputError(this.scrub(`batch API ${step} at ${this.target.provider}: ${what}`), {
      provider: this.target.provider,
    });
  }

  private scrub(text: string): string {
    return scrubSecrets(text, [this.#key]);
  }
}
