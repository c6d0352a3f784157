import type { UpstreamUrls } from '@hfq/shared';
import { PROVIDERS } from '@huggingface/inference';

/**
 * The `fetch` handed to `@huggingface/inference`. It points the client's fixed origins
 * (router, Hub, each provider's API) at the configured upstream URLs, and captures what the
 * client's errors leave out: the response headers (Retry-After, RateLimit, x-inference-provider).
 */

const HUB_ORIGIN = 'https://huggingface.co';
const ROUTER_ORIGIN = 'https://router.huggingface.co';

/** Provider name by the origin of its own API, read from the client's provider table. */
function providerOrigins(): Map<string, string> {
  const map = new Map<string, string>();
  for (const [provider, tasks] of Object.entries(PROVIDERS)) {
    for (const helper of Object.values(tasks ?? {})) {
      const baseUrl = (helper as unknown as { baseUrl?: unknown }).baseUrl;
      if (typeof baseUrl === 'string' && baseUrl.startsWith('https://') && !map.has(baseUrl)) {
        map.set(baseUrl.replace(/\/+$/, ''), provider);
      }
    }
  }
  return map;
}

let origins: Map<string, string> | undefined;

export interface CapturedResponse {
  status: number;
  headers: Headers;
  url: string;
}

/** Rewrite a client URL to the configured upstream; unknown URLs pass unchanged. */
export function rewriteUrl(url: string, upstream: UpstreamUrls): string {
  if (upstream.routerUrl && url.startsWith(ROUTER_ORIGIN))
    return upstream.routerUrl + url.slice(ROUTER_ORIGIN.length);
  if (upstream.hubUrl && (url === HUB_ORIGIN || url.startsWith(`${HUB_ORIGIN}/`))) {
    return upstream.hubUrl + url.slice(HUB_ORIGIN.length);
  }
  if (upstream.providerUrls) {
    origins ??= providerOrigins();
    for (const [origin, provider] of origins) {
      const target = upstream.providerUrls[provider];
      if (target && url.startsWith(origin)) return target + url.slice(origin.length);
    }
  }
  return url;
}

/**
 * A fetch for one inference call: rewrites URLs, caps the response body, and records the
 * last upstream response so a failure can be classified from its headers.
 */
export function createUpstreamFetch(
  upstream: UpstreamUrls,
  maxBodyBytes: number,
  onInferenceSend?: (atMs: number) => void,
  inferenceHeaders?: Record<string, string>,
) {
  const captured: { last: CapturedResponse | undefined } = { last: undefined };
  const upstreamFetch: typeof fetch = async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const isHub = url === HUB_ORIGIN || url.startsWith(`${HUB_ORIGIN}/`);
    if (!isHub) onInferenceSend?.(performance.now());
    const withHeaders =
      inferenceHeaders && !isHub
        ? { ...init, headers: { ...toRecord(init?.headers), ...inferenceHeaders } }
        : init;
    const response = await fetch(rewriteUrl(url, upstream), withHeaders);
    // Hub answers (the mapping lookup) carry the Hub's own rate headers: only inference answers count.
    if (!isHub) {
      captured.last = { status: response.status, headers: response.headers, url };
    }
    return capBody(response, maxBodyBytes);
  };
  return { fetch: upstreamFetch, captured };
}

function toRecord(headers: HeadersInit | undefined): Record<string, string> {
  if (!headers) return {};
  if (headers instanceof Headers) {
    const out: Record<string, string> = {};
    headers.forEach((value, name) => {
      out[name] = value;
    });
    return out;
  }
  if (Array.isArray(headers)) return Object.fromEntries(headers);
  return { ...headers };
}

/** Oversized bodies fail the read instead of filling the worker's memory. */
function capBody(response: Response, maxBytes: number): Response {
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > maxBytes) {
    void response.body?.cancel();
    throw new OversizedResponseError(declared, maxBytes);
  }
  if (!response.body) return response;
  // Hot path (bench:load): a declared length within the cap already bounds the body (undici reads
  // no more than Content-Length), so it needs no counting stream, which cost every answer two web
  // streams and a pipe. A compressed body is decoded by fetch and may grow: it is still counted.
  const encoding = response.headers.get('content-encoding');
  const hasLength = response.headers.has('content-length') && Number.isSafeInteger(declared);
  if (hasLength && (!encoding || encoding === 'identity')) return response;
  let seen = 0;
  const limited = response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > maxBytes) controller.error(new OversizedResponseError(seen, maxBytes));
        else controller.enqueue(chunk);
      },
    }),
  );
  return new Response(limited, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

export class OversizedResponseError extends Error {
  constructor(size: number, max: number) {
    super(`upstream response body larger than ${max} bytes (at least ${size})`);
    this.name = 'OversizedResponseError';
  }
}
