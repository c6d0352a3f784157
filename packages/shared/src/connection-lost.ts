/**
 * ioredis and socket errors that mean the connection is gone, whatever its status says yet: a
 * command sent while it went (`Connection is closed`, a retried command past its
 * `maxRetriesPerRequest`), refused while offline (`enableOfflineQueue`), or the socket's own.
 */
const CONNECTION_LOST =
  /Redis not reachable|Stream isn't writeable|Connection is closed|max retries per request|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|enableOfflineQueue/i;

export function isConnectionLost(err: unknown): boolean {
  return CONNECTION_LOST.test((err as Error | undefined)?.message ?? '');
}
