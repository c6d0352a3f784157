/**
 * Upstream wordings, in one place. Those marked "reported" are quoted from real answers
 * (shared/reference/huggingface.md); those marked "guess" are plausible shapes the simulator
 * uses where no real answer is on record. Callers should classify by status first.
 */
import type { CreditMessageKey, DirectProviderName } from './config.js';

/** Reported: the router's 402 wordings. */
export const CREDIT_MESSAGES: Record<CreditMessageKey, string> = {
  'monthly-included-exceeded':
    'You have exceeded your monthly included credits for Inference Providers. Subscribe to PRO to get 20x more monthly included credits.',
  'monthly-included-depleted':
    'You have depleted your monthly included credits. Purchase pre-paid credits to continue using Inference Providers. Alternatively, subscribe to PRO to get 20x more included credits.',
  'no-remaining-credits':
    'You have no remaining credits. Purchase pre-paid credits to continue using Inference Providers. Alternatively, subscribe to PRO to get monthly included credits.',
  'endpoints-monthly-exceeded':
    'You have exceeded your monthly included credits for Inference Endpoints. Subscribe to PRO to get 20x more monthly allowance.',
};

/** Reported: the router's 429 body. */
export const RATE_LIMIT_REACHED = 'Rate limit reached';

/** Reported: the legacy Inference API's 429 body. */
export const RATE_LIMIT_LEGACY =
  'Rate limit reached. You reached free usage limit (reset hourly). Please subscribe to a plan at https://huggingface.co/pricing to use the API at this rate';

/** Reported: Replicate's 429 detail. */
export function replicateThrottled(seconds: number): string {
  return `Request was throttled. Your rate limit resets in ~${seconds}s.`;
}

/** Guess (error_type values reported): Together's 429 body. */
export function togetherThrottled(unit: 'requests' | 'tokens'): unknown {
  return {
    error: {
      message:
        unit === 'tokens'
          ? 'Request was rejected due to token rate limiting.'
          : 'Request was rejected due to request rate limiting.',
      type: 'rate_limit_exceeded',
      error_type: unit === 'tokens' ? 'dynamic_token_limited' : 'dynamic_request_limited',
      param: null,
      code: null,
    },
  };
}

/** Guess: Cerebras's 429 body (flat OpenAI-like error). */
export function cerebrasThrottled(unit: 'requests' | 'tokens'): unknown {
  return unit === 'tokens'
    ? {
        message: 'Tokens per minute limit exceeded - too many tokens processed.',
        type: 'too_many_requests_error',
        param: 'quota',
        code: 'token_quota_exceeded',
      }
    : {
        message: 'Requests per minute limit exceeded - too many requests sent.',
        type: 'too_many_requests_error',
        param: 'quota',
        code: 'request_quota_exceeded',
      };
}

/** Guess: the Hub API's 429 body (the wait itself is in the reported `RateLimit` header). */
export const HUB_RATE_LIMITED =
  'Rate limit reached for the Hub API. Retry after the time given in the RateLimit header.';

/** Guess (the Hub's wording as commonly seen; the router is assumed to match): a token the server does not accept. */
export const INVALID_CREDENTIALS = 'Invalid credentials in Authorization header';

/** Guess: provider 401 bodies in direct mode. */
export const PROVIDER_UNAUTHORIZED: Record<DirectProviderName, unknown> = {
  together: {
    error: {
      message:
        'Invalid API key provided. You can find your API key at https://api.together.xyz/settings/api-keys.',
      type: 'invalid_request_error',
      param: null,
      code: 'invalid_api_key',
    },
  },
  cerebras: {
    message: 'Wrong API Key',
    type: 'invalid_request_error',
    param: 'api_key',
    code: 'wrong_api_key',
  },
};

/** Guess: provider 402 bodies in direct mode. */
export const PROVIDER_PAYMENT_REQUIRED: Record<DirectProviderName, unknown> = {
  together: {
    error: {
      message:
        'Credit limit exceeded. Please navigate to https://api.together.xyz/settings/billing to add credit or upgrade your plan.',
      type: 'credit_limit',
      param: null,
      code: null,
    },
  },
  cerebras: {
    message: 'Payment required. Please add credits to your account to continue.',
    type: 'payment_required_error',
    param: 'billing',
    code: 'payment_required',
  },
};

/** Reported: a provider that does not serve the model. */
export function modelNotSupported(provider: string): string {
  return `Model not supported by provider ${provider}`;
}

/** Reported: the auto-router finds no provider for the model. */
export function noProviderForModel(model: string): string {
  return `The requested model '${model}' is not supported by any provider you have enabled.`;
}

/** Guess: `X-HF-Bill-To` names an org the token may not bill. */
export function cannotBillTo(org: string): string {
  return `You are not a member of the organization '${org}', or it does not exist or has no billing set up. Requests cannot be billed to it.`;
}

/** Guess (text-embeddings-inference style): an input array over the batch cap. */
export function batchTooLarge(items: number, max: number): string {
  return `Input validation error: batch size ${items} > maximum allowed batch size ${max}`;
}

/** Reported: 500 and 503 bodies. */
export const INTERNAL_SERVER_ERROR = 'Internal Server Error';
export const SERVICE_UNAVAILABLE = 'Service Temporarily Unavailable';

/** Reported: the legacy model-loading 503, with the float kept as `20.0`. */
export function modelLoadingBody(model: string): string {
  return `{"error":"Model ${model} is currently loading","estimated_time":20.0}`;
}

/** An nginx-style error page, as proxies answer. */
export function htmlErrorPage(status: number, reason: string): string {
  return `<html>\r\n<head><title>${status} ${reason}</title></head>\r\n<body>\r\n<center><h1>${status} ${reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
}

/** Reported: the Hub's answer for a model that does not exist. */
export const REPOSITORY_NOT_FOUND = 'Repository not found';
