import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/**
 * `@huggingface/inference` caches each model's provider mapping in a module-level Map with no
 * TTL, and does not export it. When a provider answers "Model not supported", hfq drops the
 * model's entry so the next call asks the Hub again; and before a request takes its permit,
 * hfq fills the entry so the time between permit and send holds no Hub round trip. Both reach
 * the client's own ES module file (same URL, so the same instance the client uses).
 */

type MappingCache = Map<string, unknown>;
type FetchMapping = (
  modelId: string,
  accessToken: string | undefined,
  options: { fetch: typeof fetch },
) => Promise<unknown>;
interface MappingModule {
  cache: MappingCache;
  fetchMapping: FetchMapping | undefined;
}

let loaded: Promise<MappingModule | undefined> | undefined;

function loadModule(): Promise<MappingModule | undefined> {
  loaded ??= (async () => {
    try {
      const entry = createRequire(import.meta.url).resolve('@huggingface/inference');
      const file = entry.replace(
        /dist[\\/]commonjs[\\/]index\.js$/,
        'dist/esm/lib/getInferenceProviderMapping.js',
      );
      const mod = (await import(pathToFileURL(file).href)) as {
        inferenceProviderMappingCache?: unknown;
        fetchInferenceProviderMappingForModel?: unknown;
      };
      if (!(mod.inferenceProviderMappingCache instanceof Map)) return undefined;
      const fetchMapping = mod.fetchInferenceProviderMappingForModel;
      return {
        cache: mod.inferenceProviderMappingCache as MappingCache,
        fetchMapping: typeof fetchMapping === 'function' ? (fetchMapping as FetchMapping) : undefined,
      };
    } catch {
      return undefined;
    }
  })();
  return loaded;
}

/** Drop a model's cached provider mapping. Returns false if the client's cache could not be reached. */
export async function forgetModelMapping(modelId: string): Promise<boolean> {
  const mod = await loadModule();
  if (!mod) return false;
  mod.cache.delete(modelId);
  return true;
}

/** Fill the client's mapping cache for a model ahead of the permit. Failures are left to the real call. */
export async function warmModelMapping(
  modelId: string,
  hfToken: string,
  upstreamFetch: typeof fetch,
): Promise<void> {
  const mod = await loadModule();
  if (!mod?.fetchMapping || mod.cache.has(modelId)) return;
  try {
    await mod.fetchMapping(modelId, hfToken, { fetch: upstreamFetch });
  } catch {
    // the inference call repeats the lookup and classifies its failure
  }
}
