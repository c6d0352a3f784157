import type { DomainRef } from '@hfq/shared/internal';
import type { CallRoute } from '../inference-call.js';

/**
 * Where a job's next request goes, with its permit, or why nowhere: what `chooseTarget`, the
 * router probe and the endpoint spill each answer (a type of its own, so that none of them
 * depends on another for it).
 */
export type Target =
  /** No route: `account` when no key can take any work (hold the queue), `job` when none serves this job's model. */
  | { kind: 'none'; scope: 'account' | 'job'; reason: string }
  | {
      kind: 'go';
      /** The router or a provider key: an endpoint's call is made by `endpoint-route.ts` alone. */
      route: CallRoute & { route: 'hf-router' | 'provider-key' };
      domain: DomainRef;
      provider: string | undefined;
      permit: { sentAt: number; waitedMs: number; uid: string };
      /** The probe of a closed credit gate (`router-route.ts`, `provider-key-route.ts`): its success reopens that gate. */
      probe?: true;
    };
