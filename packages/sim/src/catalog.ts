/**
 * The default model catalog, and lookups over any catalog. Provider ids follow the real
 * mappings where they are known to differ from the Hugging Face id, so a caller that confuses
 * the two is caught.
 */
import type { ProviderName } from './providers.js';

/** How one provider serves a model. */
export interface ProviderMappingConfig {
  /** Task advertised in the Hub mapping (`conversational`, `feature-extraction`, …). */
  task: string;
  /** The provider's own model id. @defaultValue the Hugging Face model id */
  providerId?: string;
  /** Mapping status. @defaultValue `'live'` */
  status?: 'live' | 'staging';
}

/** A model on the simulated Hub. Provider order is the order of the Hub mapping. */
export interface ModelConfig {
  /** Providers serving the model, in mapping order. */
  providers: Partial<Record<ProviderName, ProviderMappingConfig>>;
  /** Embedding length for feature extraction. @defaultValue `8` */
  dims?: number;
}

export const DEFAULT_CATALOG: Record<string, ModelConfig> = {
  'meta-llama/Llama-3.1-8B-Instruct': {
    providers: {
      together: { task: 'conversational', providerId: 'meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo' },
      cerebras: { task: 'conversational', providerId: 'llama3.1-8b' },
    },
  },
  // The Hub mapping holds one task per provider, so text generation needs its own (base) model.
  'meta-llama/Llama-3.1-8B': {
    providers: {
      together: { task: 'text-generation', providerId: 'meta-llama/Meta-Llama-3.1-8B' },
      'hf-inference': { task: 'text-generation' },
    },
  },
  'sentence-transformers/all-MiniLM-L6-v2': {
    providers: {
      'hf-inference': { task: 'feature-extraction' },
      together: { task: 'feature-extraction' },
    },
  },
  'BAAI/bge-small-en-v1.5': {
    providers: {
      'hf-inference': { task: 'feature-extraction' },
      together: { task: 'feature-extraction' },
    },
  },
  'distilbert/distilbert-base-uncased-finetuned-sst-2-english': {
    providers: { 'hf-inference': { task: 'text-classification' } },
  },
  'facebook/bart-large-cnn': {
    providers: { 'hf-inference': { task: 'summarization' } },
  },
  'Helsinki-NLP/opus-mt-en-fr': {
    providers: { 'hf-inference': { task: 'translation' } },
  },
  'black-forest-labs/FLUX.1-schnell': {
    providers: {
      'hf-inference': { task: 'text-to-image' },
      together: { task: 'text-to-image' },
    },
  },
};

/** A model as one provider serves it. */
export interface ServedModel {
  modelId: string;
  model: ModelConfig;
  provider: ProviderName;
  mapping: ProviderMappingConfig;
  providerModelId: string;
}

// An explicitly named provider serves staging mappings too; the auto-router picks live ones only.
function serve(
  modelId: string,
  model: ModelConfig,
  provider: ProviderName,
  liveOnly = false,
): ServedModel | null {
  const mapping = model.providers[provider];
  if (!mapping || (liveOnly && (mapping.status ?? 'live') !== 'live')) return null;
  return { modelId, model, provider, mapping, providerModelId: mapping.providerId ?? modelId };
}

/** The model a provider serves under the Hugging Face id `modelId`. */
export function findByModelId(
  catalog: Record<string, ModelConfig>,
  provider: ProviderName,
  modelId: string,
): ServedModel | null {
  const model = catalog[modelId];
  return model ? serve(modelId, model, provider) : null;
}

/** The model a provider serves under its own id (a request body's `model`); the HF id also works. */
export function findByProviderModelId(
  catalog: Record<string, ModelConfig>,
  provider: ProviderName,
  providerModelId: string,
): ServedModel | null {
  for (const [modelId, model] of Object.entries(catalog)) {
    const served = serve(modelId, model, provider);
    if (served && served.providerModelId === providerModelId) return served;
  }
  return findByModelId(catalog, provider, providerModelId);
}

/** The auto-router's pick: the first live provider, in mapping order, whose task is `task`. */
export function firstProviderFor(
  catalog: Record<string, ModelConfig>,
  modelId: string,
  task: string,
): ServedModel | null {
  const model = catalog[modelId];
  if (!model) return null;
  for (const provider of Object.keys(model.providers) as ProviderName[]) {
    const served = serve(modelId, model, provider, true);
    if (served && served.mapping.task === task) return served;
  }
  return null;
}
