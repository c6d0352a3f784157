import { ConfigError } from './config-error.js';
import { closestName } from './did-you-mean.js';

/**
 * Every environment variable hfq's config reads (the simulator's `SIM_*` are its own). The
 * compose file test checks that each variable a service sets is one of these.
 */
export const KNOWN_VARIABLES = [
  'REDIS_URL',
  'REDIS_CLUSTER_NODES',
  'HFQ_PREFIX',
  'LOG_LEVEL',
  'HFQ_ACCOUNTS_FILE',
  'HFQ_ACCOUNT',
  'HF_TOKEN',
  'HFQ_TIER',
  'HFQ_BILL_TO',
  'HFQ_SEATS',
  'HFQ_LIMITS',
  'HFQ_PROVIDER_KEYS',
  'HFQ_FALLBACK_PROVIDERS',
  'HFQ_MONTHLY_BUDGET_USD',
  'HFQ_AFTER_INCLUDED_CREDITS',
  'HFQ_RESULT_REUSE_TTL_MS',
  'HFQ_RESULT_REUSE_MAX_BYTES',
  'HFQ_PROVIDER_BUDGET_USD',
  'HFQ_ON_NO_KEY',
  'HFQ_MAX_429S',
  'HFQ_CONCURRENCY',
  'HF_ROUTER_URL',
  'HF_HUB_URL',
  'HFQ_PROVIDER_URLS',
  'HFQ_BOARD_PORT',
  'HFQ_BOARD_HOST',
  'HFQ_BOARD_USER',
  'HFQ_BOARD_PASSWORD',
  'HFQ_BOARD_AUTH',
  'HFQ_BOARD_READ_ONLY',
  'HFQ_METRICS_PORT',
  'HFQ_SHUTDOWN_GRACE_MS',
  'HFQ_LOCK_DURATION_MS',
  'HFQ_STALLED_INTERVAL_MS',
  'HFQ_MAX_STALLED_COUNT',
  'HFQ_LIMITER_AUDIT',
  'HFQ_CREDIT_PROBE_MS',
  'HFQ_ENDPOINTS',
  'HFQ_ROUTING',
  'HF_ENDPOINTS_API_URL',
  'HFQ_ENDPOINT_LEASE_MS',
  'HFQ_ENDPOINT_CHECK_MS',
] as const;

/**
 * `HFQ_*` variables read outside the config: by the CLI (`HFQ_LOG_FORMAT`, `HFQ_WATCH_SECONDS`,
 * `HFQ_DEBUG`), by docker-compose on the host (`HFQ_IMAGE`, `HFQ_*_PUBLISH_PORT`), by the tests
 * and benchmarks. They are not mistakes when set.
 */
export const OTHER_HFQ_VARIABLES = [
  'HFQ_LOG_FORMAT',
  'HFQ_WATCH_SECONDS',
  'HFQ_DEBUG',
  'HFQ_IMAGE',
  'HFQ_BOARD_PUBLISH_PORT',
  'HFQ_REDIS_PUBLISH_PORT',
  'HFQ_UPDATE_SCREENSHOTS',
  'HFQ_VITEST_JSON',
] as const;

const ACCEPTED: readonly string[] = [...KNOWN_VARIABLES, ...OTHER_HFQ_VARIABLES];

/**
 * An `HFQ_*` variable hfq does not read is a mistake (`HFQ_TEIR=pro` would leave the tier at its
 * default without a word): start-up stops naming each one and the variable it most likely means.
 * Only the `HFQ_` prefix is hfq's own; `HF_*` and `REDIS_*` are shared with other tools.
 */
export function checkUnknownVariables(env: Readonly<Record<string, string | undefined>>): void {
  const unknown = Object.keys(env)
    .filter((name) => name.startsWith('HFQ_') && env[name] !== undefined && !ACCEPTED.includes(name))
    .sort();
  const [first, ...rest] = unknown;
  if (first === undefined) return;
  const describe = (name: string) => {
    const meant = closestName(name, ACCEPTED);
    return meant ? `did you mean ${meant}?` : 'hfq reads no such variable (see README, "Configuration")';
  };
  const others = rest.map((name) => `; ${name}: unknown variable, ${describe(name)}`).join('');
  throw new ConfigError(first, `unknown variable, ${describe(first)}${others}`);
}
