import type { Job } from '@hfq/shared';
import type { AccountContext } from '../account-context.js';
import type { Target } from './target.js';

/**
 * A request through the HF router: the account's token (and the organisation it bills), the
 * job's provider, on the router permit it was admitted with.
 */
export function routerTarget(
  ctx: AccountContext,
  job: Job,
  permit: { sentAt: number; waitedMs: number; uid: string },
): Extract<Target, { kind: 'go' }> {
  const { account } = ctx;
  return {
    kind: 'go',
    route: {
      route: 'hf-router',
      credential: account.hfToken,
      provider: job.provider,
      billTo: account.billTo,
    },
    domain: ctx.routes.routerDomainFor(job.provider),
    provider: job.provider,
    permit,
  };
}
