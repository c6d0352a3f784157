import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type AccountConfigInput, type Connection, DEFAULT_PREFIX } from '@hfq/shared';
import { connectionFor, describeMemory, readRedisMemory } from '@hfq/shared/internal';
import { createAdmin } from '../admin.js';
import type { HfqWorker } from '../worker.js';
import { WorkerMetrics } from './metrics.js';

export interface HealthServerOptions {
  worker: HfqWorker;
  /** The same `connection` as the worker's (URL, options, `Redis`, `Cluster` or cluster nodes). */
  connection: Connection;
  /** @defaultValue `'hfq'` */
  prefix?: string;
  /** The worker's accounts (for the status the gauges read). */
  accounts: AccountConfigInput[];
  /** Port; 0 picks a free one. */
  port: number;
  /** @defaultValue `'0.0.0.0'` */
  host?: string;
  /** Longest wait for Redis to answer PING before /readyz says no. @defaultValue 1000 */
  pingTimeoutMs?: number;
}

export interface HealthServer {
  readonly port: number;
  readonly url: string;
  readonly metrics: WorkerMetrics;
  /** From now on /readyz answers 503 (the process is shutting down). */
  markStopping(): void;
  close(): Promise<void>;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function send(res: ServerResponse, status: number, body: string, contentType = 'application/json'): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store' }).end(body);
}

/**
 * A worker process's operations endpoint: `/metrics` (Prometheus), `/healthz` (the process is
 * up: liveness) and `/readyz` (Redis answers PING quickly, is not full, and every account's worker runs:
 * readiness). One small Redis connection of its own, plus the metrics' status reader.
 */
export async function createHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const pingTimeoutMs = options.pingTimeoutMs ?? 1_000;
  const redis = connectionFor(options.connection, 'producer', `${prefix}:hfq-health`);
  redis.on('error', () => {}); // /readyz reports it
  const admin = createAdmin({ connection: options.connection, prefix, accounts: options.accounts });
  const metrics = new WorkerMetrics({ worker: options.worker, admin, redis, prefix });
  let stopping = false;

  const readiness = async (): Promise<{ ready: boolean; checks: Record<string, string> }> => {
    const checks: Record<string, string> = {};
    try {
      const abort = new AbortController();
      // A connection still (re)connecting gets the same short time to come up as PING gets to answer.
      const up =
        redis.status === 'ready'
          ? Promise.resolve()
          : once(redis, 'ready', { signal: abort.signal }).then(() => {});
      await withTimeout(
        up.then(() => redis.ping()),
        pingTimeoutMs,
        'redis PING',
      ).finally(() => abort.abort());
      // A full Redis (maxmemory with noeviction) answers PING but refuses every write: no job moves.
      const memory = await withTimeout(readRedisMemory(redis), pingTimeoutMs, 'redis INFO');
      checks.redis =
        memory.maxBytes > 0 && memory.usedBytes >= memory.maxBytes
          ? `full: ${describeMemory(memory)}; writes are refused until memory is freed or maxmemory raised`
          : 'ok';
    } catch (err) {
      checks.redis = (err as Error).message;
    }
    const runtimes = [...options.worker.runtimes.values()];
    checks.worker = stopping
      ? 'stopping'
      : runtimes.every((r) => r.worker.isRunning())
        ? 'running'
        : 'not running';
    return { ready: checks.redis === 'ok' && checks.worker === 'running', checks };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, '{"error":"method not allowed"}');
    }
    switch (path) {
      case '/healthz':
        return send(res, 200, '{"status":"ok"}');
      case '/readyz': {
        const { ready, checks } = await readiness();
        return send(
          res,
          ready ? 200 : 503,
          JSON.stringify({ status: ready ? 'ready' : 'not ready', checks }),
        );
      }
      case '/metrics': {
        const { contentType, body } = await metrics.render();
        return send(res, 200, body, contentType);
      }
      default:
        return send(res, 404, '{"error":"not found"}');
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      if (!res.headersSent) send(res, 500, JSON.stringify({ error: err.message }));
      else res.destroy();
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host ?? '0.0.0.0', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    metrics.close();
    await admin.close();
    redis.disconnect();
    throw err;
  }
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    metrics,
    markStopping() {
      stopping = true;
    },
    close() {
      closing ??= (async () => {
        stopping = true;
        metrics.close();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
        await admin.close();
        await redis.quit().catch(() => redis.disconnect());
      })();
      return closing;
    },
  };
}
