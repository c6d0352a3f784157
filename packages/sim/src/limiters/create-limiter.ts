import type { RateLimitConfig } from '../config.js';
import { FixedWindowLimiter } from './fixed-window.js';
import type { Limiter } from './limiter.js';
import { ScheduledLimiter } from './scheduled-limit.js';
import { SlidingWindowLimiter } from './sliding-window.js';
import { TokenBucketLimiter } from './token-bucket.js';

export function createLimiter(config: RateLimitConfig): Limiter {
  switch (config.algorithm) {
    case 'sliding-window':
      if (config.schedule?.length) {
        return new ScheduledLimiter(new SlidingWindowLimiter(config.limit, config.windowMs), config.schedule);
      }
      return new SlidingWindowLimiter(config.limit, config.windowMs);
    case 'token-bucket':
      return new TokenBucketLimiter(config.limit, config.windowMs, config.burst);
    case 'fixed-window':
      return new FixedWindowLimiter(config.limit, config.windowMs);
  }
}
