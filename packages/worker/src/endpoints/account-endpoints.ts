import type { AccountConfig, Logger, UpstreamUrls } from '@hfq/shared';
import {
  type EndpointSemaphore,
  type EndpointStatusStore,
  markEndpointDemand,
  type RedisClient,
} from '@hfq/shared/internal';
import type { WorkerEvents } from '../worker-events.js';
import { EndpointLifecycle } from './endpoint-lifecycle.js';
import { AccountEndpoint } from './endpoint-slots.js';

/** An account's Inference Endpoints in this process, and their backlog-driven lifecycle (none without endpoints). */

/** What the endpoints of an account are made from (a part of the account runtime's options). */
export interface AccountEndpointsOptions {
  redis: RedisClient;
  prefix: string;
  upstream: UpstreamUrls;
  logger: Logger;
  events: WorkerEvents;
  now: () => number;
  timeoutMs: number;
  endpointSemaphore: EndpointSemaphore;
  endpointStatus: EndpointStatusStore;
  endpointCheckMs: number;
}

/** A job waiting for an endpoint slot tries again at least this often (a slot another process freed). */
const ENDPOINT_POLL_MS = 20;
/**
 * A demand mark (a job found its endpoint unavailable) lasts at least this long: longer than a
 * held job's recheck (endpoint-route.ts), so held jobs keep it set while they wait.
 */
const ENDPOINT_DEMAND_MIN_TTL_MS = 10_000;

export function accountEndpoints(
  account: AccountConfig,
  options: AccountEndpointsOptions,
): { endpoints: AccountEndpoint[]; lifecycle: EndpointLifecycle | undefined } {
  const endpoints = (account.endpoints ?? []).map(
    (config) =>
      new AccountEndpoint(
        config,
        account.id,
        options.endpointSemaphore,
        options.endpointStatus,
        ENDPOINT_POLL_MS,
        options.timeoutMs,
        {
          ttlMs: Math.max(3 * options.endpointCheckMs, ENDPOINT_DEMAND_MIN_TTL_MS),
          mark: (ttlMs) => markEndpointDemand(options.redis, options.prefix, account.id, config.name, ttlMs),
        },
      ),
  );
  const lifecycle =
    endpoints.length > 0
      ? new EndpointLifecycle(endpoints, {
          redis: options.redis,
          prefix: options.prefix,
          hfToken: account.hfToken,
          endpointsApiUrl: options.upstream.endpointsApiUrl,
          checkMs: options.endpointCheckMs,
          logger: options.logger,
          events: options.events,
        })
      : undefined;
  return { endpoints, lifecycle };
}
