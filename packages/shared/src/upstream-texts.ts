/**
 * Phrases by which the upstream says "your account's credits or balance are gone", from the 402
 * answers users have reported (see DESIGN.md, reference/huggingface.md) and providers' billing
 * errors. Matched case-insensitively, by fragment, so a reworded sentence that keeps the key
 * phrase is still recognised. A 402 is credits whatever its text; these phrases make a 429 or
 * another 4xx credits too, so each names the account's credits or balance: a generic "payment
 * required" inside an answer about something else is not one of them.
 */
export const CREDIT_PHRASES: readonly RegExp[] = [
  /exceeded your monthly included credits/i,
  /depleted your monthly included credits/i,
  /no remaining credits/i,
  /purchase pre-?paid credits/i,
  /insufficient (credits|balance|funds)/i,
  /credit limit exceeded/i,
  /add credits? to your account/i,
  /(account|credit) balance (is )?(too low|exhausted|insufficient|depleted)/i,
];

/**
 * A router 403 that concerns the account as a whole (its token may not call Inference Providers,
 * or may not bill the organisation it names), not one model. Any other 403 (a gated or
 * restricted repository) concerns that model's jobs only.
 */
export const ACCOUNT_REFUSED =
  /sufficient permissions|not (a )?member of the organi[sz]ation|cannot be billed|bill(ed|ing) to|billing (is )?not set up|token (is )?(invalid|revoked|expired)/i;

/** A provider saying it does not (or no longer) serve the model. */
export const MODEL_NOT_SUPPORTED =
  /model not supported|is not supported by any provider|not been able to find inference provider/i;

/**
 * An Inference Endpoint's 400 when it is paused: its proxy answers "Bad Request: Invalid state"
 * until it is resumed. On the router or a provider key a 400 with these words means nothing special.
 */
export const ENDPOINT_PAUSED = /invalid state/i;

/** A provider saying the request is too large (too many inputs or tokens). */
export const REQUEST_TOO_LARGE =
  /too large|too many (inputs|items|tokens)|maximum (batch|context)|payload too/i;

export function mentionsCredits(body: string): boolean {
  const text = body.slice(0, 8192);
  return CREDIT_PHRASES.some((re) => re.test(text));
}
