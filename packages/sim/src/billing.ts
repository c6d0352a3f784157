/**
 * Who pays for a request, and what the answer is once they cannot. On the router a request is
 * billed to the token, or to the org named by `X-HF-Bill-To` (which the token must belong to);
 * a direct provider bills its own key and never looks at Hugging Face credits or headers.
 */
import type { Caller } from './auth.js';
import type { CreditConfig, SimConfig, ThrottleTarget } from './config.js';
import { errorReply, jsonReply, type Reply } from './http/reply.js';
import { CREDIT_MESSAGES, cannotBillTo, PROVIDER_PAYMENT_REQUIRED } from './texts.js';

export interface BillingAccount {
  /** Ledger key: `token:<id>` or `org:<name>`. */
  account: string;
  /** Name in stats: `token:<label>` or `org:<name>`. */
  label: string;
  /** Undefined: no credit limit. */
  credits: CreditConfig | undefined;
}

export function billingAccount(
  config: SimConfig,
  caller: Caller,
  target: ThrottleTarget,
  billTo: string | null,
): BillingAccount | { refused: Reply } {
  if (target === 'router' && billTo !== null) {
    const org = config.orgs[billTo];
    if (!org || !(caller.policy.orgs ?? []).includes(billTo))
      return { refused: errorReply(403, cannotBillTo(billTo)) };
    return { account: `org:${billTo}`, label: `org:${billTo}`, credits: org.credits };
  }
  return { account: `token:${caller.id}`, label: `token:${caller.label}`, credits: caller.policy.credits };
}

/** The answer once the account's credits are spent. */
export function creditsExhaustedReply(target: ThrottleTarget, credits: CreditConfig | undefined): Reply {
  const status = credits?.as402 === false ? 429 : 402;
  if (target !== 'router') return jsonReply(status, PROVIDER_PAYMENT_REQUIRED[target]);
  return errorReply(status, CREDIT_MESSAGES[credits?.creditMessage ?? 'monthly-included-exceeded']);
}
