import type { AccountConfig } from '@hfq/shared';
import {
  accountBudgetUsd,
  type CreditState,
  creditScope,
  keyScope,
  type LaneId,
  laneEndpoint,
} from '@hfq/shared/internal';
import type { AccountEndpoint } from './endpoints/endpoint-slots.js';
import type { RouteSelection } from './route-selection.js';

/**
 * Whether a held lane's jobs have a route again (see docs/architecture.md, "Holds"): an endpoint
 * lane's endpoint is up, cold (a request wakes it) or its paused/failed mark lapsed; else, unless
 * the routing is `endpoint-only`, the router (credits and budget left, or a probe due) or a
 * provider key that is open.
 */
export interface LaneRouteDeps {
  account: AccountConfig;
  routes: RouteSelection;
  endpoints: readonly AccountEndpoint[];
  options: { credits: CreditState };
}

export async function laneHasRoute(deps: LaneRouteDeps, lane: LaneId, nowMs: number): Promise<boolean> {
  const name = laneEndpoint(lane);
  const endpoint = name === undefined ? undefined : deps.endpoints.find((e) => e.name === name);
  if (endpoint) {
    const status = await endpoint.status.read(deps.account.id, endpoint.name);
    if (status.state === 'ok' || status.state === 'cold') return true;
    if (status.untilMs > 0 && status.untilMs <= nowMs) return true;
    if (deps.account.routing === 'endpoint-only') return false;
  }
  return routerOrKeyOpen(deps, nowMs);
}

async function routerOrKeyOpen(deps: LaneRouteDeps, nowMs: number): Promise<boolean> {
  const { credits } = deps.options;
  const { account } = deps;
  const scope = creditScope(account);
  const [spent, gate] = await Promise.all([credits.spend(scope, nowMs), credits.status(scope, nowMs)]);
  const underBudget = spent.hfRouterUsd < (accountBudgetUsd(account) ?? Number.POSITIVE_INFINITY);
  if (gate.state === 'ok' && underBudget) return true;
  // A router probe is due (routes/router-route.ts): resume, so one queued job can be that probe; a
  // spent budget takes no probe either.
  if (gate.state === 'exhausted' && gate.nextProbeAtMs <= nowMs && underBudget) return true;
  if (account.providerBudgetUsd !== undefined && spent.providerKeyUsd >= account.providerBudgetUsd)
    return false;
  for (const provider of deps.routes.providerDomains()) {
    const key = await credits.status(keyScope(provider.domain.id), nowMs);
    // A key's probe is due (routes/provider-key-route.ts): resume, so one queued job can be that probe.
    if (key.state === 'ok' || (key.state === 'exhausted' && key.nextProbeAtMs <= nowMs)) return true;
  }
  return false;
}
