import {
  type DomainLimiter,
  type DomainRef,
  type HeaderLookup,
  type Logger,
  statedThrottleDelay,
} from '@hfq/shared';
import type { CapturedResponse } from './upstream-fetch.js';

/**
 * Where a 429 is handled (decision 5). The delay comes from the answer (Retry-After, RateLimit,
 * provider reset headers, a quota reset in the body), else backoff with full jitter on the
 * domain's consecutive episodes; the whole domain pauses (its next permit moves past the wait,
 * for every worker on every machine) and the learned rate drops once per congestion episode.
 * The job itself keeps its place and uses no attempt: the caller re-queues it with
 * `queue.rateLimit(pauseMs)` + `RateLimitError`.
 */
export async function handle429(input: {
  limiter: DomainLimiter;
  domain: DomainRef;
  sentAt: number;
  response: CapturedResponse | undefined;
  body: string;
  nowMs: number;
  logger: Logger;
  account: string;
  route: string;
}): Promise<{ pauseMs: number; newEpisode: boolean }> {
  const headers = input.response?.headers;
  const get: HeaderLookup = (name) => headers?.get(name);
  // No stated wait: the limiter backs off on the domain's episodes, which it counts in Redis.
  const stated = statedThrottleDelay({ get, body: input.body, nowMs: input.nowMs });
  const outcome = await input.limiter.recordThrottle(input.domain, input.sentAt, stated?.delayMs);
  if (outcome.newEpisode) {
    input.logger.warn(
      {
        account: input.account,
        route: input.route,
        domain: input.domain.id,
        delayMs: outcome.pauseMs,
        delaySource: stated?.source ?? 'backoff',
        learnedRate: Number(outcome.rate.toFixed(2)),
        episodes: outcome.episodes,
      },
      'upstream 429: domain paused, learned rate lowered',
    );
  }
  return { pauseMs: Math.max(outcome.pauseMs, 1), newEpisode: outcome.newEpisode };
}
