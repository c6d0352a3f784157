import type { RedisErrorLog } from './redis-error-log.js';

/**
 * ioredis writes some warnings with `console.warn` / `console.error` rather than as events: a
 * connection's error with no listener (`[ioredis] Unhandled error event: …`), a password the
 * server does not need, a failed ready check. A process that logs through pino routes them to
 * its log (once per condition, secrets masked, see `RedisErrorLog`) instead of letting them reach
 * stderr raw, between its log lines or over a progress bar. Any other console output passes through.
 */

/** The first words of every warning ioredis prints itself. */
const IOREDIS_PATTERN =
  /^(\[ioredis\]|\[WARN\] (Redis server|This Redis server)|\[ERROR\] The server returned|Skipping the ready check)/;

/**
 * Route ioredis's console warnings to `log` until the returned function is called. A function is
 * called at the first warning (a command that may never see one makes no logger for it).
 */
export function routeIoredisConsole(target: RedisErrorLog | (() => RedisErrorLog)): () => void {
  let log = typeof target === 'function' ? undefined : target;
  const original = { warn: console.warn, error: console.error };
  const route =
    (fallback: (...args: unknown[]) => void) =>
    (...args: unknown[]): void => {
      const [first] = args;
      if (typeof first !== 'string' || !IOREDIS_PATTERN.test(first)) {
        fallback(...args);
        return;
      }
      // "[ioredis] Unhandled error event:" is followed by the error's stack: keep its first line.
      const detail = args
        .slice(1)
        .map((a) => String(a).split('\n')[0])
        .join(' ');
      log ??= (target as () => RedisErrorLog)();
      log.report('ioredis', new Error(detail ? `${first} ${detail}` : first), {
        level: 'warn',
        msg: 'ioredis warning',
      });
    };
  console.warn = route(original.warn);
  console.error = route(original.error);
  return () => {
    console.warn = original.warn;
    console.error = original.error;
  };
}
