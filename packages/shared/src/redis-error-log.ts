import type { Logger } from './logger.js';
import { scrubSecrets } from './secrets.js';

/**
 * Redis connection trouble in the log, once per distinct condition. While Redis is down every
 * connection of a process (hfq's own, each BullMQ worker's and queue's) errors on every reconnect
 * attempt, several times a second; the log gets the first of each condition (`connect
 * ECONNREFUSED 10.0.0.5:6379`, `WRONGPASS …`), then one line per `repeatMs` saying how often it
 * came back meanwhile, and a line when a watched connection is ready again. Messages go through
 * `scrubSecrets`: a URL's password or a token in an error text never reaches the log.
 */

/** A condition seen again within this long is counted, not logged. @defaultValue 60000 */
export const REDIS_ERROR_REPEAT_MS = 60_000;

export interface RedisErrorLogOptions {
  /** @defaultValue `REDIS_ERROR_REPEAT_MS` */
  repeatMs?: number;
  /** @defaultValue Date.now */
  now?: () => number;
  /** Secrets to mask in messages besides tokens, bearer credentials and URL user-info. */
  secrets?: () => Iterable<string>;
}

interface Condition {
  loggedAt: number;
  repeats: number;
}

/** How one error is logged: level and message; the condition is the message plus the error's text. */
export interface ErrorLine {
  level: 'warn' | 'error';
  msg: string;
}

const DEFAULT_LINE: ErrorLine = { level: 'warn', msg: 'Redis connection error' };

export class RedisErrorLog {
  private readonly conditions = new Map<string, Condition>();
  private readonly repeatMs: number;
  private readonly now: () => number;

  constructor(
    private readonly logger: Logger,
    private readonly options: RedisErrorLogOptions = {},
  ) {
    this.repeatMs = options.repeatMs ?? REDIS_ERROR_REPEAT_MS;
    this.now = options.now ?? Date.now;
  }

  /**
   * Log `err` from `source` (`worker-state`, `queue acme`…) unless its condition was logged less
   * than `repeatMs` ago. `line` chooses the level and message (a full Redis says so in its own words).
   */
  report(source: string, err: unknown, line: ErrorLine = DEFAULT_LINE): void {
    const text = this.describe(err);
    const key = `${line.msg}\n${text}`;
    const nowMs = this.now();
    const seen = this.conditions.get(key);
    if (seen && nowMs - seen.loggedAt < this.repeatMs) {
      seen.repeats += 1;
      return;
    }
    const repeats = seen?.repeats ?? 0;
    this.conditions.set(key, { loggedAt: nowMs, repeats: 0 });
    const fields: Record<string, unknown> = { source, err: text };
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (typeof code === 'string') fields.code = code;
    if (seen) fields.repeats = repeats;
    const msg = seen ? `${line.msg} (again; ${repeats} more since the last line)` : line.msg;
    this.logger[line.level](fields, msg);
  }

  /** An `error` listener for a connection or a BullMQ object. */
  listener(source: string, line?: (err: Error) => ErrorLine): (err: Error) => void {
    return (err) => this.report(source, err, line?.(err));
  }

  /**
   * Listen to a connection of hfq's own: its errors (a cluster's node errors too) are reported,
   * and once it is ready again after some, one line says so, with how many errors it saw
   * (`errors`), and its conditions are forgotten (a new outage logs at once).
   */
  watch(client: NodeJS.EventEmitter, source: string): void {
    /** Errors since the connection was last ready (0: not failing). */
    let failures = 0;
    client.on('error', (err: Error) => {
      failures += 1;
      this.report(source, err);
    });
    // A cluster client reports its nodes' connection errors apart from its own.
    client.on('node error', (err: Error, node: string) => {
      failures += 1;
      this.report(`${source} (node ${node})`, err);
    });
    client.on('ready', () => {
      if (failures === 0) return;
      const errors = failures;
      failures = 0;
      this.conditions.clear();
      this.logger.info({ source, errors }, 'Redis connection ready again');
    });
  }

  private describe(err: unknown): string {
    const raw = err instanceof Error ? err.message : String(err);
    // The first line: ioredis appends no stack, but a script error carries the script's lines.
    const first = raw.split('\n')[0] ?? raw;
    return scrubSecrets(first, this.options.secrets?.() ?? []);
  }
}
