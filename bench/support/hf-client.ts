/**
 * The official `@huggingface/inference` client for baselines, pointed at the simulator.
 *
 * The workspace root does not depend on the client; `@hfq/worker` does. The baselines load the
 * very copy the hfq worker runs (resolved from `@hfq/worker`'s own dependencies), so every
 * system in a comparison calls the upstream through the same client version. Only the few
 * members the benchmarks use are typed here.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { rewriteUrl } from '@hfq/worker/internal';

export interface FeatureExtractionClient {
  featureExtraction(
    args: { model: string; inputs: string | string[] },
    options?: { signal?: AbortSignal },
  ): Promise<unknown>;
}

interface InferenceModule {
  InferenceClient: new (
    accessToken: string,
    options: { fetch: typeof fetch; retry_on_error: boolean },
  ) => FeatureExtractionClient;
  setLogger?: (logger: Partial<Record<'debug' | 'info' | 'warn' | 'error' | 'log', unknown>>) => void;
}

const requireFromWorker = createRequire(fileURLToPath(import.meta.resolve('@hfq/worker')));
const inference = requireFromWorker('@huggingface/inference') as InferenceModule;

/** The client's own version, as installed for `@hfq/worker`. */
export const clientVersion: string = (
  requireFromWorker('@huggingface/inference/package.json') as { version: string }
).version;

/**
 * A client for `token` whose requests go to the simulator (`routerUrl`, `hubUrl`) instead of
 * Hugging Face, with the client's own instant 503 retry off (as hfq has it).
 */
export function simClient(
  token: string,
  upstream: { routerUrl: string; hubUrl: string },
): FeatureExtractionClient {
  const quiet = () => {};
  inference.setLogger?.({ debug: quiet, info: quiet, log: quiet, warn: quiet, error: quiet });
  const simFetch: typeof fetch = (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    return fetch(rewriteUrl(url, upstream), init);
  };
  return new inference.InferenceClient(token, { fetch: simFetch, retry_on_error: false });
}

/** HTTP status of a client error (`InferenceClientProviderApiError` and friends), if it has one. */
export function httpStatusOf(err: unknown): number | undefined {
  const status = (err as { httpResponse?: { status?: unknown } } | null)?.httpResponse?.status;
  return typeof status === 'number' ? status : undefined;
}
