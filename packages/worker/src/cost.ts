import type { Job } from '@hfq/shared';

/**
 * Estimated cost of requests (see docs/architecture.md, "What a 402 does"). Hugging Face reports no cost per request, so hfq
 * estimates: chat from the response's `usage` tokens × a price per million tokens, other tasks
 * from a price per request (or per input item). The defaults are examples, in the range of
 * small open models on partner providers in 2026; set your own with `prices`.
 */
export interface PriceTable {
  /** USD per million input and output tokens, by `provider/model`, `provider/*` or `*`. */
  tokens: Record<string, { inputPerM: number; outputPerM: number }>;
  /** USD per request (plus per input item for arrays), by task. */
  requests: Record<string, { perRequest: number; perItem?: number }>;
}

export const DEFAULT_PRICES: PriceTable = {
  tokens: {
    '*': { inputPerM: 0.2, outputPerM: 0.2 },
    'cerebras/*': { inputPerM: 0.1, outputPerM: 0.1 },
    'together/*': { inputPerM: 0.18, outputPerM: 0.18 },
  },
  requests: {
    'feature-extraction': { perRequest: 0.00001, perItem: 0.000002 },
    'sentence-similarity': { perRequest: 0.00001, perItem: 0.000002 },
    'text-classification': { perRequest: 0.00001 },
    'text-generation': { perRequest: 0.0001 },
    summarization: { perRequest: 0.0001 },
    translation: { perRequest: 0.0001 },
    'text-to-image': { perRequest: 0.003 },
    'chat-completion': { perRequest: 0.0001 },
  },
};

/** The token price of a provider and model (the most specific entry of the table). */
export function tokenPrice(prices: PriceTable, provider: string, model: string) {
  return prices.tokens[`${provider}/${model}`] ?? prices.tokens[`${provider}/*`] ?? prices.tokens['*'];
}

/** Tokens a request will use, estimated before the call: prompt characters / 4 plus `max_tokens`. */
export function estimateTokens(job: Job): number {
  if (job.task === 'chat-completion') {
    const chars = job.messages.reduce(
      (sum, m) => sum + (typeof m.content === 'string' ? m.content.length : JSON.stringify(m.content).length),
      0,
    );
    const maxTokens = Number(job.parameters?.max_tokens ?? job.parameters?.max_completion_tokens ?? 256);
    return Math.ceil(chars / 4) + (Number.isFinite(maxTokens) ? maxTokens : 256);
  }
  const text = JSON.stringify(job.inputs);
  return Math.ceil(text.length / 4);
}

/** Tokens a finished chat request really used, from the response's `usage`. */
export function usedTokens(output: unknown): { prompt: number; completion: number } | undefined {
  const usage = (output as { usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } } | null)
    ?.usage;
  if (!usage || typeof usage.prompt_tokens !== 'number') return undefined;
  return { prompt: usage.prompt_tokens, completion: Number(usage.completion_tokens ?? 0) };
}

/** Estimated USD of one finished request. */
export function estimateCost(prices: PriceTable, job: Job, provider: string, output: unknown): number {
  const used = usedTokens(output);
  if (used) {
    const price = tokenPrice(prices, provider, job.model);
    if (price) return (used.prompt * price.inputPerM + used.completion * price.outputPerM) / 1_000_000;
  }
  const price = prices.requests[job.task];
  if (!price) return 0;
  const items =
    job.task === 'feature-extraction' && Array.isArray(job.inputs)
      ? job.inputs.length
      : job.task === 'sentence-similarity'
        ? job.inputs.sentences.length
        : 1;
  return price.perRequest + (price.perItem ?? 0) * items;
}
