import type { Logger } from '@hfq/shared';
import {
  type DomainLimiter,
  type DomainRef,
  type HeaderLookup,
  noiseRetryDelayMs,
  statedThrottleDelay,
} from '@hfq/shared/internal';
import type { CapturedResponse } from './upstream-fetch.js';

/**
 * Where a 429 is handled. The detector (`congestion-detector.ts` in @hfq/shared) says what it
 * means; see docs/architecture.md, "What a 429 means".
 *
 * - A stated wait (Retry-After, RateLimit, provider reset headers, a quota reset in the body)
 *   pauses the whole domain (its next permit moves past the wait, for every worker on every
 *   machine); the job goes back to its queue for that long (`pause`).
 * - No stated wait: the job alone retries after a short jittered delay (`retry`), whether the 429
 *   was noise or congestion; congestion has already lowered the domain's rate, which paces every
 *   worker. No other job of the domain waits for it.
 *
 * Either way the 429 counts toward the job's `max429s` and uses no attempt.
 */
export type Throttle429 =
  | { kind: 'pause'; pauseMs: number; newEpisode: boolean }
  | { kind: 'retry'; delayMs: number; newEpisode: boolean };

export async function handle429(input: {
  limiter: DomainLimiter;
  domain: DomainRef;
  sentAt: number;
  response: CapturedResponse | undefined;
  body: string;
  nowMs: number;
  random: () => number;
  logger: Logger;
  account: string;
  route: string;
}): Promise<Throttle429> {
  const headers = input.response?.headers;
  const get: HeaderLookup = (name) => headers?.get(name);
  const stated = statedThrottleDelay({ get, body: input.body, nowMs: input.nowMs });
  const outcome = await input.limiter.record429(input.domain, input.sentAt, stated?.delayMs);
  // The rate's cut, when the episode made one, has its own line (rate-change-log.ts).
  const fields = {
    account: input.account,
    route: input.route,
    domain: input.domain.id,
    delayMs: outcome.pauseMs,
    delaySource: stated?.source ?? 'none',
    learnedRate: Number(outcome.rate.toFixed(2)),
  };
  if (outcome.newEpisode) {
    input.logger.info({ ...fields, episodes: outcome.episodes }, 'upstream 429: congestion episode');
  } else if (outcome.verdict === 'noise') {
    // The level it was judged against, and the evidence behind it (0 sends: the prior).
    input.logger.debug(
      {
        ...fields,
        noiseLevel: Number(outcome.noiseLevel.toFixed(4)),
        noiseEvidenceSends: Math.round(outcome.noiseEvidenceSends),
      },
      'upstream 429: noise, nothing shared changes',
    );
  }
  if (stated) return { kind: 'pause', pauseMs: Math.max(outcome.pauseMs, 1), newEpisode: outcome.newEpisode };
  return { kind: 'retry', delayMs: noiseRetryDelayMs(input.random), newEpisode: outcome.newEpisode };
}
