import { maskUrlCredentials } from './secrets.js';

/**
 * A bad or missing environment variable, or a Redis that refuses the configured credentials. The
 * message names the variable, the value and what was expected. Its own module: config loading
 * (`env-config.ts`) and connecting (`redis.ts`) both throw it, and neither depends on the other.
 */
export class ConfigError extends Error {
  readonly code = 'HFQ_CONFIG';
  constructor(
    readonly variable: string,
    message: string,
    /** What was expected, shown as written (not masked): a fixed text such as a URL's pattern. */
    expected?: string,
  ) {
    // A URL's user-info (a Redis password) never reaches the message, whichever variable held it.
    super(maskUrlCredentials(`${variable}: ${message}`) + (expected ? `; expected ${expected}` : ''));
    this.name = 'ConfigError';
  }
}
