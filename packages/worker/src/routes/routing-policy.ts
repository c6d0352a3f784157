import type { RoutingPolicy } from '@hfq/shared';

/**
 * The routing policies of jobs an Inference Endpoint serves, as one table (see README, "Routing
 * policy", and docs/architecture.md, "Dedicated capacity"): which of endpoint and router a job
 * tries first, whether the router may take it at all, and what an unavailable endpoint does to
 * its jobs. `endpoint-route.ts` follows it; jobs no endpoint serves take the router, then a
 * provider key (`choose-target.ts`), whatever the policy.
 */
export interface RoutingRule {
  /** The endpoint's free slot is tried before a router permit. */
  endpointFirst: boolean;
  /** The router may take the job (a permit due within a moment, or once the endpoint is unavailable). */
  router: boolean;
  /** A paused or failed endpoint: its jobs go around it (the router path), or are held. */
  unavailable: 'route-around' | 'hold';
}

export const ROUTING_RULES: Readonly<Record<RoutingPolicy, RoutingRule>> = {
  'endpoint-first': { endpointFirst: true, router: true, unavailable: 'route-around' },
  'router-first': { endpointFirst: false, router: true, unavailable: 'route-around' },
  'endpoint-only': { endpointFirst: true, router: false, unavailable: 'hold' },
};

export const DEFAULT_ROUTING: RoutingPolicy = 'endpoint-first';

/** The account's routing policy and its rule. */
export function routingRule(routing: RoutingPolicy | undefined): RoutingRule & { policy: RoutingPolicy } {
  const policy = routing ?? DEFAULT_ROUTING;
  return { policy, ...ROUTING_RULES[policy] };
}
