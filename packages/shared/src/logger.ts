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
  /** Where lines go. @defaultValue standard output */
  destination?: NodeJS.WritableStream;
}

/** One JSON event per line, stable field names (`jobId`, `account`, `provider`, `status`, `delayMs`). */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      name: options.name ?? 'hfq',
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      // A URL's user-info (a Redis password) never reaches a line, in the message or a string field.
      hooks: {
        logMethod(args, method) {
          const masked = args.map((arg: unknown) => maskLogArgument(arg));
          method.apply(this, masked as Parameters<typeof method>);
        },
      },
    },
    options.destination ?? process.stdout,
  );
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
