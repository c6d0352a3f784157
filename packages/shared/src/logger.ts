import { type Logger, pino } from 'pino';

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
    },
    options.destination ?? process.stdout,
  );
}
