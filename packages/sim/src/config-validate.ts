/**
 * Validation of configuration patches from outside the type system (a JSON file, `POST
 * /_sim/config`, JavaScript callers). Errors name the path, the bad value and what was expected.
 */
import { DIRECT_PROVIDERS, PROVIDERS, type SimConfigPatch } from './config.js';
import { FAULT_KINDS } from './faults.js';
import type { ScriptStep } from './scripts.js';

export class SimConfigError extends Error {
  override readonly name = 'SimConfigError';
}

type Check = (value: unknown, path: string) => void;

const show = (value: unknown): string => {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text;
};

function fail(path: string, value: unknown, expected: string): never {
  throw new SimConfigError(`${path}: expected ${expected}, got ${show(value)}`);
}

function record(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, value, 'an object');
  return value as Record<string, unknown>;
}

const number =
  (min = Number.NEGATIVE_INFINITY, max = Number.POSITIVE_INFINITY, integer = false): Check =>
  (value, path) => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      fail(path, value, `a number in ${min}..${max}`);
    }
    if (integer && !Number.isInteger(value)) fail(path, value, 'an integer');
  };

const oneOf =
  (...options: readonly unknown[]): Check =>
  (value, path) => {
    if (!options.includes(value))
      fail(path, value, `one of ${options.map((option) => show(option)).join(', ')}`);
  };

const string: Check = (value, path) => {
  if (typeof value !== 'string') fail(path, value, 'a string');
};
const boolean: Check = (value, path) => {
  if (typeof value !== 'boolean') fail(path, value, 'a boolean');
};
const listOf =
  (check: Check): Check =>
  (value, path) => {
    if (!Array.isArray(value)) fail(path, value, 'an array');
    value.forEach((item, index) => {
      check(item, `${path}[${index}]`);
    });
  };
const recordOf =
  (check: Check, nullable = false): Check =>
  (value, path) => {
    for (const [key, item] of Object.entries(record(value, path))) {
      if (!(nullable && item === null)) check(item, `${path}.${key}`);
    }
  };

/** An object whose keys must all be known; `required` keys must be present. */
const shape =
  (fields: Record<string, Check>, required: readonly string[] = []): Check =>
  (value, path) => {
    const object = record(value, path);
    for (const key of required) if (!(key in object)) fail(`${path}.${key}`, undefined, 'a value');
    for (const [key, item] of Object.entries(object)) {
      const check = fields[key];
      if (!check)
        throw new SimConfigError(`${path}.${key}: unknown option (known: ${Object.keys(fields).join(', ')})`);
      if (item !== undefined) check(item, `${path}.${key}`);
    }
  };

const positive = number(Number.MIN_VALUE);
const rate = number(0, 1);
const nonNegative = number(0);

const rateLimit = shape(
  {
    algorithm: oneOf('sliding-window', 'token-bucket', 'fixed-window'),
    limit: positive,
    windowMs: positive,
    burst: positive,
    scope: oneOf('token', 'token+provider'),
    unit: oneOf('requests', 'tokens'),
    schedule: listOf(shape({ afterMs: nonNegative, limit: positive }, ['afterMs', 'limit'])),
  },
  ['algorithm', 'limit', 'windowMs'],
);
const limits = listOf(rateLimit);

const credits = shape(
  {
    balanceUsd: number(),
    costPerRequestUsd: nonNegative,
    costPerItemUsd: nonNegative,
    creditMessage: oneOf(
      'monthly-included-exceeded',
      'monthly-included-depleted',
      'no-remaining-credits',
      'endpoints-monthly-exceeded',
    ),
    as402: boolean,
  },
  ['balanceUsd'],
);

const faults = shape({
  error5xxRate: rate,
  overloadedRate: rate,
  overloadedStyle: oneOf('plain', 'loading'),
  garbageRate: rate,
  htmlRate: rate,
  htmlStatus: number(100, 599, true),
  truncatedJsonRate: rate,
  oversizedRate: rate,
  oversizedBytes: number(0, 1024 ** 3, true),
  hangRate: rate,
  resetRate: rate,
});

const latency = shape({
  baseMs: nonNegative,
  jitterMs: nonNegative,
  minMs: nonNegative,
  maxMs: nonNegative,
  perItemMs: nonNegative,
});

const throttleStyle = shape({
  retryAfter: oneOf('seconds', 'http-date', 'none'),
  rateLimitHeaders: oneOf('none', 'ietf', 'together', 'cerebras'),
  rateLimitHeadersOnSuccess: boolean,
  body: oneOf('hf', 'hf-legacy', 'together', 'replicate', 'cerebras'),
});

const token = shape({
  label: string,
  limits,
  hubLimits: limits,
  credits,
  revoked: boolean,
  orgs: listOf(string),
  faults,
  latency,
  throttleStyle,
  providers: listOf(oneOf(...DIRECT_PROVIDERS)),
  busyShare: rate,
  busySchedule: listOf(shape({ afterMs: nonNegative, share: rate }, ['afterMs', 'share'])),
});

const model = shape(
  {
    providers: (value, path) => {
      for (const [provider, mapping] of Object.entries(record(value, path))) {
        oneOf(...PROVIDERS)(provider, `${path} key`);
        shape({ task: string, providerId: string, status: oneOf('live', 'staging') }, ['task'])(
          mapping,
          `${path}.${provider}`,
        );
      }
    },
    dims: number(1, 65_536, true),
  },
  ['providers'],
);

const turnaround: Check = (value, path) => {
  const kind = record(value, path).kind;
  if (kind === 'fixed') shape({ kind: string, ms: nonNegative }, ['ms'])(value, path);
  else if (kind === 'range') {
    shape({ kind: string, minMs: nonNegative, maxMs: nonNegative }, ['minMs', 'maxMs'])(value, path);
    const { minMs, maxMs } = value as { minMs: number; maxMs: number };
    if (maxMs < minMs) fail(`${path}.maxMs`, maxMs, `a number >= minMs (${minMs})`);
  } else if (kind === 'stuck') shape({ kind: string })(value, path);
  else fail(`${path}.kind`, kind, 'one of "fixed", "range", "stuck"');
};

const batchApi = shape({
  style: shape({ together: oneOf('openai', 'together'), cerebras: oneOf('openai', 'together') }),
  turnaround,
  validatingMs: nonNegative,
  completionWindowMs: positive,
  failureShare: rate,
  priceShare: nonNegative,
  timeScale: positive,
  maxRequestsPerFile: number(1, 10_000_000, true),
  maxFileBytes: number(1, 2 * 1024 ** 3, true),
  answerDelayMs: shape({ upload: nonNegative, create: nonNegative, download: nonNegative }),
});

const patch = shape({
  seed: number(0, 2 ** 32 - 1, true),
  unknownTokens: oneOf('allow', 'reject'),
  defaultToken: token,
  providerLimits: (value, path) => {
    for (const [provider, list] of Object.entries(record(value, path))) {
      oneOf(...PROVIDERS)(provider, `${path} key`);
      limits(list, `${path}.${provider}`);
    }
  },
  latency,
  faults,
  throttleStyle: shape({ router: throttleStyle, together: throttleStyle, cerebras: throttleStyle }),
  hub: shape({
    limits,
    mappingForm: oneOf('object', 'array'),
    rateLimitHeadersOnSuccess: boolean,
    retryAfter: oneOf('seconds', 'http-date', 'none'),
  }),
  maxItemsPerRequest: (value, path) => {
    if (value !== null) number(1, Number.MAX_SAFE_INTEGER, true)(value, path);
  },
  tooLargeStatus: oneOf(413, 422),
  logLimit: number(1, 10_000_000, true),
  tokens: recordOf(token, true),
  orgs: recordOf(shape({ credits }), true),
  models: recordOf(model, true),
  batchApi,
});

/** Check `input` and return it typed as a patch; throws `SimConfigError` naming the first problem. */
export function parseConfigPatch(input: unknown, path = 'config'): SimConfigPatch {
  patch(input, path);
  return input as SimConfigPatch;
}

const scriptStep: Check = (value, path) => {
  const object = record(value, path);
  if ('fault' in object) {
    shape({ fault: oneOf(...FAULT_KINDS), delayMs: nonNegative }, ['fault'])(object, path);
    return;
  }
  shape(
    {
      status: number(100, 599, true),
      body: () => {},
      headers: recordOf(string),
      retryAfter: (item, itemPath) => {
        if (typeof item !== 'string') nonNegative(item, itemPath);
      },
      delayMs: nonNegative,
    },
    ['status'],
  )(object, path);
};

/** Check a list of script steps. */
export function parseScript(input: unknown, path = 'steps'): ScriptStep[] {
  listOf(scriptStep)(input, path);
  return input as ScriptStep[];
}
