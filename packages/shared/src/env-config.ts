import { ACCOUNTS, type AccountConfig, type RateWindow } from './account-schema.js';
import { checkProviderVariables, parseAccountsFile } from './accounts-file.js';
import { ConfigError } from './config-error.js';
import { checkUnknownVariables } from './known-variables.js';
import { DEFAULT_PREFIX, prefixProblem } from './queue-names.js';
import type { Connection } from './redis-cluster.js';
import { readClusterConnection } from './redis-env.js';

export { ConfigError } from './config-error.js';
export { KNOWN_VARIABLES } from './known-variables.js';

export type Env = Readonly<Record<string, string | undefined>>;

const SECRET_VARIABLES = new Set(['HF_TOKEN', 'HFQ_PROVIDER_KEYS', 'HFQ_BOARD_PASSWORD']);

/** Shows a bad value in an error, unless the variable holds a secret. */
function shown(variable: string, value: string): string {
  return SECRET_VARIABLES.has(variable) ? '(value hidden)' : JSON.stringify(value);
}

export function readString(env: Env, name: string, fallback: string): string {
  const value = env[name];
  return value === undefined || value === '' ? fallback : value;
}

export function readInt(
  env: Env,
  name: string,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(name, `got ${shown(name, raw)}, expected a whole number from ${min} to ${max}`);
  }
  return value;
}

function readNumber(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    throw new ConfigError(name, `got ${shown(name, raw)}, expected a number ≥ 0`);
  }
  return value;
}

/** `together=abc,cerebras=def` → `{ together: 'abc', cerebras: 'def' }`. */
export function readPairs(env: Env, name: string): Record<string, string> | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const pairs: Record<string, string> = {};
  for (const part of raw.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (eq <= 0 || value === '' || !/^[a-z0-9][a-z0-9-]*$/.test(key)) {
      throw new ConfigError(name, `expected "name=value" pairs separated by commas, such as "together=…"`);
    }
    if (key in pairs) throw new ConfigError(name, `"${key}" is given twice`);
    pairs[key] = value;
  }
  return pairs;
}

function readList(env: Env, name: string): string[] | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `50/1s`, `500/1m,10000/1d`, `200000tok/1m` → rate windows. */
export function parseLimits(variable: string, raw: string): RateWindow[] {
  return raw.split(',').map((part) => {
    const match = /^\s*(\d+)(tok)?\s*\/\s*(\d+)?\s*(ms|s|m|h|d)\s*$/.exec(part);
    if (!match) {
      throw new ConfigError(
        variable,
        `got ${JSON.stringify(part)}, expected "N/1s", "N/1m", "N/1d" or "Ntok/1m"`,
      );
    }
    const [, n, tok, count, unit] = match;
    const durationMs = Number(count ?? 1) * (DURATION_UNITS[unit as string] as number);
    const amount = Number(n);
    if (amount <= 0 || durationMs <= 0)
      throw new ConfigError(variable, `limit and duration must be positive`);
    return tok ? { tokens: amount, durationMs } : { max: amount, durationMs };
  });
}

export interface UpstreamUrls {
  routerUrl?: string;
  hubUrl?: string;
  providerUrls?: Record<string, string>;
  /** Replaces `https://api.endpoints.huggingface.cloud` (Inference Endpoints' management API). */
  endpointsApiUrl?: string;
}

/** Everything a worker process or the CLI needs, read once from the environment at start-up. */
export interface HfqConfig {
  redisUrl: string;
  /** What to connect to: `REDIS_URL`, or the cluster `REDIS_CLUSTER_NODES` names. */
  connection: Connection;
  prefix: string;
  accounts: AccountConfig[];
  concurrency: number;
  upstream: UpstreamUrls;
  boardPort: number;
  /** Interface the board listens on (`HFQ_BOARD_HOST`). */
  boardHost: string;
  boardUser: string | undefined;
  boardPassword: string | undefined;
  /** `false` only with `HFQ_BOARD_AUTH=off` on a loopback `HFQ_BOARD_HOST`. */
  boardAuth: boolean;
  /** `HFQ_BOARD_READ_ONLY=true`: every write to the board's API answers 405. */
  boardReadOnly: boolean;
  metricsPort: number;
  shutdownGraceMs: number;
  /** BullMQ's lock on a running job: how soon a dead worker's job is re-delivered. */
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** Times a job may stall (its worker died) before it fails. */
  maxStalledCount: number;
  /** `HFQ_LIMITER_AUDIT`: keep every admission's Redis time in `<domain>:audit` (diagnostics). */
  limiterAudit: boolean;
  /** `HFQ_CREDIT_PROBE_MS`: while a credit gate is closed (HF credits, or a provider key's 402), one probe of it per interval (all workers together). */
  creditProbeMs: number;
  /** Lease of an Inference Endpoint slot: how soon a dead worker's slots come back. */
  endpointLeaseMs: number;
  /** How often an endpoint's state, backlog and idle time are checked (lifecycle, cost). */
  endpointCheckMs: number;
  logLevel: string;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

function readBoolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(value)) return true;
  if (['false', '0', 'no', 'off'].includes(value)) return false;
  throw new ConfigError(name, `got ${JSON.stringify(raw)}, expected true or false`);
}

/** Board bind address and auth: auth may be off only on a loopback interface. */
function boardAccess(env: Env): { boardHost: string; boardAuth: boolean; boardReadOnly: boolean } {
  const boardHost = readString(env, 'HFQ_BOARD_HOST', '0.0.0.0');
  if (!/^[A-Za-z0-9.:-]{1,253}$/.test(boardHost)) {
    throw new ConfigError(
      'HFQ_BOARD_HOST',
      `got ${JSON.stringify(boardHost)}, expected an IP address or host name`,
    );
  }
  const auth = readString(env, 'HFQ_BOARD_AUTH', 'basic');
  if (auth !== 'basic' && auth !== 'on' && auth !== 'off') {
    throw new ConfigError(
      'HFQ_BOARD_AUTH',
      `got ${JSON.stringify(auth)}, expected "basic" (or "on") or "off"`,
    );
  }
  if (auth === 'off' && !LOOPBACK_HOSTS.has(boardHost)) {
    throw new ConfigError(
      'HFQ_BOARD_AUTH',
      `"off" is accepted only with HFQ_BOARD_HOST=127.0.0.1 (or ::1, localhost); HFQ_BOARD_HOST is ${JSON.stringify(boardHost)}`,
    );
  }
  return {
    boardHost,
    boardAuth: auth !== 'off',
    boardReadOnly: readBoolean(env, 'HFQ_BOARD_READ_ONLY', false),
  };
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function readUrl(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  try {
    const url = new URL(raw);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
  } catch {
    throw new ConfigError(name, `got ${JSON.stringify(raw)}, expected an http(s) URL`);
  }
  return raw.replace(/\/+$/, '');
}

function accountsFromEnv(env: Env, readFile: (path: string) => string): AccountConfig[] {
  const file = env.HFQ_ACCOUNTS_FILE;
  if (file) {
    let text: string;
    try {
      text = readFile(file);
    } catch (err) {
      throw new ConfigError(
        'HFQ_ACCOUNTS_FILE',
        `cannot read ${JSON.stringify(file)} (${(err as Error).message})`,
      );
    }
    return parseAccountsFile(file, text);
  }
  const id = env.HFQ_ACCOUNT;
  if (!id)
    throw new ConfigError('HFQ_ACCOUNT', 'missing: set HFQ_ACCOUNT (with HF_TOKEN) or HFQ_ACCOUNTS_FILE');
  if (!env.HF_TOKEN)
    throw new ConfigError('HF_TOKEN', 'missing: the account needs a Hugging Face token (hf_…)');
  const limits = env.HFQ_LIMITS ? parseLimits('HFQ_LIMITS', env.HFQ_LIMITS) : undefined;
  const candidate = {
    id,
    tier: readString(env, 'HFQ_TIER', 'free'),
    hfToken: env.HF_TOKEN,
    billTo: env.HFQ_BILL_TO || undefined,
    seats: env.HFQ_SEATS ? readInt(env, 'HFQ_SEATS', 1, 1) : undefined,
    limits,
    providerKeys: readPairs(env, 'HFQ_PROVIDER_KEYS'),
    fallbackProviders: readList(env, 'HFQ_FALLBACK_PROVIDERS'),
    monthlyBudgetUsd: readNumber(env, 'HFQ_MONTHLY_BUDGET_USD'),
    afterIncludedCredits: env.HFQ_AFTER_INCLUDED_CREDITS || undefined,
    resultReuse: readResultReuse(env),
    providerBudgetUsd: readNumber(env, 'HFQ_PROVIDER_BUDGET_USD'),
    onNoKey: env.HFQ_ON_NO_KEY || undefined,
    max429s: env.HFQ_MAX_429S ? readInt(env, 'HFQ_MAX_429S', 50, 1) : undefined,
    endpoints: readJson(env, 'HFQ_ENDPOINTS'),
    routing: env.HFQ_ROUTING || undefined,
  };
  checkProviderVariables(candidate);
  const parsed = ACCOUNTS.safeParse([candidate]);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = String(issue?.path[1] ?? '');
  const variable = ACCOUNT_FIELD_VARIABLES[field] ?? 'HFQ_ACCOUNT';
  // Inside HFQ_ENDPOINTS, name the entry and field too ("HFQ_ENDPOINTS: [0].concurrency: …").
  const where =
    field === 'endpoints' && issue && issue.path.length > 2 ? `${fieldPath(issue.path.slice(2))}: ` : '';
  throw new ConfigError(variable, `${where}${issue?.message ?? 'invalid account'}`);
}

const ACCOUNT_FIELD_VARIABLES: Record<string, string> = {
  id: 'HFQ_ACCOUNT',
  tier: 'HFQ_TIER',
  hfToken: 'HF_TOKEN',
  billTo: 'HFQ_BILL_TO',
  seats: 'HFQ_SEATS',
  limits: 'HFQ_LIMITS',
  providerKeys: 'HFQ_PROVIDER_KEYS',
  fallbackProviders: 'HFQ_FALLBACK_PROVIDERS',
  monthlyBudgetUsd: 'HFQ_MONTHLY_BUDGET_USD',
  afterIncludedCredits: 'HFQ_AFTER_INCLUDED_CREDITS',
  resultReuse: 'HFQ_RESULT_REUSE_TTL_MS',
  providerBudgetUsd: 'HFQ_PROVIDER_BUDGET_USD',
  onNoKey: 'HFQ_ON_NO_KEY',
  max429s: 'HFQ_MAX_429S',
  endpoints: 'HFQ_ENDPOINTS',
  routing: 'HFQ_ROUTING',
};

/** A JSON value (`HFQ_ENDPOINTS='[{"name": …}]'`); its shape is checked by the account schema. */
function readJson(env: Env, name: string): unknown {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new ConfigError(name, `not valid JSON (${(err as Error).message}), expected a JSON array`);
  }
}

function fieldPath(path: readonly PropertyKey[]): string {
  return path
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
    .join('')
    .replace(/^\./, '');
}

const REDIS_URL_FORM =
  'redis://[user:password@]host[:port][/db] (rediss:// for TLS; percent-encode special characters in the password)';

/** What is wrong with a `REDIS_URL`, never echoing it (it may hold a password); undefined when fine. */
function redisUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'not a valid URL';
  }
  if (url.hostname === '') return 'names no host';
  const db = url.pathname.length > 1 ? url.pathname.slice(1) : '0';
  if (!/^\d+$/.test(db)) return `the database "${db.slice(0, 20)}" is not a number`;
  return undefined;
}

/** `HFQ_RESULT_REUSE_TTL_MS` and `HFQ_RESULT_REUSE_MAX_BYTES`: both, or neither (reuse off). */
function readResultReuse(env: Env): { ttlMs: number; maxBytes: number } | undefined {
  const ttl = env.HFQ_RESULT_REUSE_TTL_MS;
  const max = env.HFQ_RESULT_REUSE_MAX_BYTES;
  if (!ttl && !max) return undefined;
  if (!ttl)
    throw new ConfigError('HFQ_RESULT_REUSE_TTL_MS', 'missing: set it with HFQ_RESULT_REUSE_MAX_BYTES');
  if (!max)
    throw new ConfigError('HFQ_RESULT_REUSE_MAX_BYTES', 'missing: set it with HFQ_RESULT_REUSE_TTL_MS');
  return {
    ttlMs: readInt(env, 'HFQ_RESULT_REUSE_TTL_MS', 0, 1_000, 31 * 86_400_000),
    maxBytes: readInt(env, 'HFQ_RESULT_REUSE_MAX_BYTES', 0, 1_024, 16 * 1024 ** 3),
  };
}

/** The connection part of the config, for commands that need no account (status, enqueue). */
export function loadConnectionConfig(env: Env): {
  redisUrl: string;
  connection: Connection;
  prefix: string;
  logLevel: string;
} {
  checkUnknownVariables(env);
  const cluster = readClusterConnection(env, (variable, message) => new ConfigError(variable, message));
  const redisUrl = readString(env, 'REDIS_URL', 'redis://127.0.0.1:6379');
  if (!/^rediss?:\/\//.test(redisUrl)) {
    throw new ConfigError(
      'REDIS_URL',
      `got ${JSON.stringify(redisUrl)}, expected redis://host:port or rediss://…`,
    );
  }
  const problem = redisUrlProblem(redisUrl);
  // Not echoed: the value may hold a password. The expected form is shown as written.
  if (problem) throw new ConfigError('REDIS_URL', problem, REDIS_URL_FORM);
  const prefix = readString(env, 'HFQ_PREFIX', DEFAULT_PREFIX);
  const prefixIssue = prefixProblem(prefix);
  if (prefixIssue) throw new ConfigError('HFQ_PREFIX', `got ${JSON.stringify(prefix)}, ${prefixIssue}`);
  const logLevel = readString(env, 'LOG_LEVEL', 'info');
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(
      'LOG_LEVEL',
      `got ${JSON.stringify(logLevel)}, expected one of ${LOG_LEVELS.join(', ')}`,
    );
  }
  return { redisUrl, connection: cluster ?? redisUrl, prefix, logLevel };
}

/**
 * Where the upstream is: `HF_ROUTER_URL`, `HF_HUB_URL`, `HFQ_PROVIDER_URLS` (`provider=url,…`) and
 * `HF_ENDPOINTS_API_URL`, each checked and normalised (no trailing slash); unset ones are the real
 * Hugging Face and providers. The CLI and `createWorker` (when given no `upstream`) both read it.
 */
export function loadUpstreamUrls(env: Env): UpstreamUrls {
  const pairs = readPairs(env, 'HFQ_PROVIDER_URLS');
  const providerUrls =
    pairs &&
    Object.fromEntries(
      Object.entries(pairs).map(([provider, url]) => [
        provider,
        readUrl({ HFQ_PROVIDER_URLS: url }, 'HFQ_PROVIDER_URLS') as string,
      ]),
    );
  return {
    routerUrl: readUrl(env, 'HF_ROUTER_URL'),
    hubUrl: readUrl(env, 'HF_HUB_URL'),
    providerUrls,
    endpointsApiUrl: readUrl(env, 'HF_ENDPOINTS_API_URL'),
  };
}

/**
 * The whole configuration from environment variables, validated once at start-up.
 * Pure but for `readFile`, which reads `HFQ_ACCOUNTS_FILE`.
 */
export function loadConfig(
  env: Env,
  readFile: (path: string) => string,
  /** `accountsOptional`: no HFQ_ACCOUNTS_FILE nor HFQ_ACCOUNT means no local accounts (read-only views). */
  options: { accountsOptional?: boolean } = {},
): HfqConfig {
  const connection = loadConnectionConfig(env);
  const boardUser = env.HFQ_BOARD_USER || undefined;
  const boardPassword = env.HFQ_BOARD_PASSWORD || undefined;
  if ((boardUser === undefined) !== (boardPassword === undefined)) {
    throw new ConfigError(
      boardUser ? 'HFQ_BOARD_PASSWORD' : 'HFQ_BOARD_USER',
      'set both HFQ_BOARD_USER and HFQ_BOARD_PASSWORD',
    );
  }
  return {
    ...connection,
    // The read-only views read the accounts workers published; they need no token of their own.
    accounts:
      options.accountsOptional && !env.HFQ_ACCOUNTS_FILE && !env.HFQ_ACCOUNT
        ? []
        : accountsFromEnv(env, readFile),
    concurrency: readInt(env, 'HFQ_CONCURRENCY', 16, 1, 1024),
    upstream: loadUpstreamUrls(env),
    boardPort: readInt(env, 'HFQ_BOARD_PORT', 3000, 0, 65535),
    boardUser,
    boardPassword,
    ...boardAccess(env),
    metricsPort: readInt(env, 'HFQ_METRICS_PORT', 9464, 0, 65535),
    shutdownGraceMs: readInt(env, 'HFQ_SHUTDOWN_GRACE_MS', 30_000, 0, 3_600_000),
    lockDurationMs: readInt(env, 'HFQ_LOCK_DURATION_MS', 30_000, 1_000),
    stalledIntervalMs: readInt(env, 'HFQ_STALLED_INTERVAL_MS', 30_000, 1_000),
    maxStalledCount: readInt(env, 'HFQ_MAX_STALLED_COUNT', 1, 0),
    limiterAudit: readBoolean(env, 'HFQ_LIMITER_AUDIT', false),
    creditProbeMs: readInt(env, 'HFQ_CREDIT_PROBE_MS', 600_000, 1_000, 86_400_000),
    endpointLeaseMs: readInt(env, 'HFQ_ENDPOINT_LEASE_MS', 30_000, 500, 3_600_000),
    endpointCheckMs: readInt(env, 'HFQ_ENDPOINT_CHECK_MS', 5_000, 100, 3_600_000),
  };
}
