/**
 * Phrases by which the upstream says "your credits are gone", from the 402 answers users have
 * reported (see DESIGN.md, reference/huggingface.md). Matched case-insensitively, by fragment,
 * so a reworded sentence that keeps the key phrase is still recognised.
 */
export const CREDIT_PHRASES: readonly RegExp[] = [
  /exceeded your monthly included credits/i,
  /depleted your monthly included credits/i,
  /no remaining credits/i,
  /purchase pre-?paid credits/i,
  /insufficient (credits|balance|funds)/i,
  /payment required/i,
];

/** A provider saying it does not (or no longer) serve the model. */
export const MODEL_NOT_SUPPORTED =
  /model not supported|is not supported by any provider|not been able to find inference provider/i;

/** A provider saying the request is too large (too many inputs or tokens). */
export const REQUEST_TOO_LARGE =
  /too large|too many (inputs|items|tokens)|maximum (batch|context)|payload too/i;

export function mentionsCredits(body: string): boolean {
  const text = body.slice(0, 8192);
  return CREDIT_PHRASES.some((re) => re.test(text));
}
