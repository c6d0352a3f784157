/**
 * Point the official client at the simulator: a `fetch` that rewrites the real origins to the
 * simulator's base URLs, as hfq does in production with other base URLs.
 */
import { InferenceClient, type Options, setLogger } from '@huggingface/inference';
import type { Sim } from '../../src/index.js';

export interface CapturedResponse {
  url: string;
  status: number;
  headers: Headers;
}

export function rewriteOrigins(
  sim: Pick<Sim, 'hubUrl' | 'routerUrl' | 'providerUrls'>,
): (url: string) => string {
  const origins: Array<[string, string]> = [
    ['https://router.huggingface.co', sim.routerUrl],
    ['https://huggingface.co', sim.hubUrl],
    ['https://api.together.xyz', sim.providerUrls.together],
    ['https://api.cerebras.ai', sim.providerUrls.cerebras],
  ];
  return (url) => {
    for (const [origin, base] of origins) {
      if (url === origin || url.startsWith(`${origin}/`)) return base + url.slice(origin.length);
    }
    throw new Error(`request to an origin the test does not rewrite: ${url}`);
  };
}

/** A fetch that rewrites origins and remembers every response's status and headers. */
export function simFetch(
  sim: Pick<Sim, 'hubUrl' | 'routerUrl' | 'providerUrls'>,
  seen: CapturedResponse[] = [],
) {
  const rewrite = rewriteOrigins(sim);
  const fetcher: typeof fetch = async (input, init) => {
    const url = rewrite(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const response = await fetch(url, init);
    seen.push({ url, status: response.status, headers: response.headers });
    return response;
  };
  return fetcher;
}

const silent = { debug() {}, info() {}, warn() {}, error() {}, log() {} };

/** An `InferenceClient` for `token` that talks to the simulator, with 503 retries off. */
export function simClient(
  sim: Pick<Sim, 'hubUrl' | 'routerUrl' | 'providerUrls'>,
  token: string,
  options: Omit<Options, 'fetch'> & { seen?: CapturedResponse[] } = {},
): InferenceClient {
  setLogger(silent);
  const { seen, ...rest } = options;
  return new InferenceClient(token, { retry_on_error: false, ...rest, fetch: simFetch(sim, seen) });
}
