import { type Logger, pino } from 'pino';
import { maskUrlCredentials } from './secrets.js';

export type { Logger };

/** Field paths pino replaces with `[redacted]` wherever they appear in a log line. */
export const REDACTED_PATHS = [
  'hfToken',
  'token',
  'accessToken',
  'key',
  'apiKey',
  'password',
  'authorization',
  'providerKeys',
  '*.hfToken',
  '*.token',
  '*.accessToken',
  '*.key',
  '*.apiKey',
  '*.password',
  '*.authorization',
  '*.providerKeys',
  'headers.authorization',
  'headers.Authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
  'accounts[*].hfToken',
  'accounts[*].providerKeys',
];

export interface LoggerOptions {
  /** @defaultValue `'info'` */
  level?: string;
  /** Component name in every line (`worker`, `producer`, `board`). */
  name?: string;
  /** Where lines go (always JSON). @defaultValue standard output */
  destination?: NodeJS.WritableStream;
  /**
   * Without a `destination`: the standard stream the lines go to (a command whose standard output
   * is its result, such as `hfq status --json`, logs on standard error). @defaultValue `'stdout'`
   */
  stream?: 'stdout' | 'stderr';
  /**
   * `pretty`: human lines (pino-pretty, in pino's transport thread); `json`: one JSON event a line.
   * @defaultValue `HFQ_LOG_FORMAT`, else `pretty` when standard output is a terminal and `json` otherwise
   */
  format?: 'pretty' | 'json';
}

/** The format when none is given: pretty for a person at a terminal, JSON for log collectors and pipes. */
export function defaultLogFormat(
  env: NodeJS.ProcessEnv = process.env,
  stream: 'stdout' | 'stderr' = 'stdout',
): 'pretty' | 'json' {
  if (env.HFQ_LOG_FORMAT === 'json' || env.HFQ_LOG_FORMAT === 'pretty') return env.HFQ_LOG_FORMAT;
  return process[stream].isTTY ? 'pretty' : 'json';
}

/** One event per line, stable field names (`jobId`, `account`, `provider`, `status`, `delayMs`). */
export function createLogger(options: LoggerOptions = {}): Logger {
  const settings = {
    level: options.level ?? 'info',
    name: options.name ?? 'hfq',
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    // A URL's user-info (a Redis password) never reaches a line, in the message or a string field.
    hooks: {
      logMethod(this: Logger, args: Parameters<Logger['info']>, method: Logger['info']) {
        const masked = args.map((arg: unknown) => maskLogArgument(arg));
        method.apply(this, masked as Parameters<typeof method>);
      },
    },
  };
  const stream = options.stream ?? 'stdout';
  if (!options.destination && (options.format ?? defaultLogFormat(process.env, stream)) === 'pretty') {
    return pino({
      ...settings,
      transport: {
        target: 'pino-pretty',
        options: {
          colorize: true,
          translateTime: 'SYS:HH:MM:ss.l',
          ignore: 'pid,hostname',
          destination: stream === 'stdout' ? 1 : 2,
        },
      },
    });
  }
  return pino(settings, options.destination ?? process[stream]);
}

function maskLogArgument(arg: unknown): unknown {
  if (typeof arg === 'string') return maskUrlCredentials(arg);
  if (arg && typeof arg === 'object' && !Array.isArray(arg) && !(arg instanceof Error)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(arg)) out[k] = typeof v === 'string' ? maskUrlCredentials(v) : v;
    return out;
  }
  return arg;
}
