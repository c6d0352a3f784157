import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import {
  ACCOUNTS,
  type AccountConfigInput,
  type Connection,
  createLogger,
  DEFAULT_PREFIX,
  type Logger,
} from '@hfq/shared';
import {
  accountQueueName,
  batchQueueName,
  checkRedisTarget,
  connectionFor,
  laneQueueName,
  parseOrThrow,
  RedisErrorLog,
  readAccountRegistry,
  readLanes,
  scrubSecrets,
} from '@hfq/shared/internal';
import { Queue } from 'bullmq';
import express from 'express';
import { createAdmin } from '../admin.js';
import { HISTORY_MAX_HOURS } from '../cockpit/history-keys.js';
import { readPublishedAccounts } from '../cockpit/published-accounts.js';
import { type BasicCredentials, basicAuth } from './basic-auth.js';
import { boardAssets, FONTS_CSS } from './board-assets.js';
import { rewriteBullBoardPage } from './bull-board-page.js';
import { scrubDeep, scrubJsonResponses } from './redaction.js';
import { renderStatusPage, STATUS_PAGE_CSP, type StatusReport } from './status-page.js';
import { rateLimitWriteGuard, readOnlyGuard } from './write-guard.js';

export interface BoardServerOptions {
  /**
   * A Redis URL, ioredis options, an ioredis `Redis` or `Cluster` (duplicated; yours to close), or
   * `{ clusterNodes: [{ host, port }, …], redisOptions? }` for a Redis Cluster.
   */
  connection: Connection;
  /** BullMQ key prefix, shared with producers and workers. @defaultValue `'hfq'` */
  prefix?: string;
  /**
   * Accounts configured locally (their tokens only name domains and are scrubbed from answers).
   * The board shows these and every account queue found under the prefix (published by workers,
   * recorded by producers). @defaultValue []
   */
  accounts?: AccountConfigInput[];
  /** Port; 0 picks a free one. @defaultValue 3000 */
  port?: number;
  /** Interface to listen on. @defaultValue `'0.0.0.0'` */
  host?: string;
  /** Basic-auth credentials, or `false` for none, which only a loopback `host` accepts. */
  auth: BasicCredentials | false;
  /** Refuse every write (HTTP 405) and hide Bull Board's action buttons. @defaultValue false */
  readOnly?: boolean;
  /** @defaultValue a pino logger named `hfq-board` */
  logger?: Logger;
  /** How often the board looks for new account queues, ms. @defaultValue 10000 */
  discoverEveryMs?: number;
}

export interface BoardServer {
  /** `http://host:port` to reach it (a wildcard bind reads as 127.0.0.1). */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * Bull Board's page asks Google Fonts for its typeface: an operator's console should not tell a
 * third party when it is open, so its link is rewritten to the same fonts served by the board
 * (board-assets.ts), and everything but the board's own origin is refused. Its scripts are files
 * of its own; its styles include inline ones.
 */
const BOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "font-src 'self' data:",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Bull Board for every account queue, behind basic auth, plus hfq's status view (`/status`,
 * `/status.json`) and an unauthenticated `/healthz`. Secrets are scrubbed from every JSON answer;
 * hfq's rate limits cannot be changed from the board; read-only mode refuses every write.
 */
export async function createBoardServer(options: BoardServerOptions): Promise<BoardServer> {
  const accounts = options.accounts?.length ? parseOrThrow(ACCOUNTS, options.accounts, 'accounts') : [];
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const host = options.host ?? '0.0.0.0';
  const readOnly = options.readOnly ?? false;
  const logger = options.logger ?? createLogger({ name: 'hfq-board' });
  if (options.auth === false && !LOOPBACK.has(host)) {
    throw new Error(
      `the board without auth may only listen on a loopback interface, not ${JSON.stringify(host)}`,
    );
  }
  const secrets = [
    ...accounts.flatMap((a) => [
      a.hfToken,
      ...Object.values(a.providerKeys ?? {}).map((k) => (typeof k === 'string' ? k : k.key)),
    ]),
    ...(options.auth ? [options.auth.password] : []),
  ];

  const redis = connectionFor(options.connection, 'producer', `${prefix}:hfq-board`);
  // One line per condition of an outage, and one when Redis is ready again.
  new RedisErrorLog(logger, { secrets: () => secrets }).watch(redis, 'board');
  const admin = createAdmin({ connection: options.connection, prefix, accounts });
  const scrub = (value: unknown) => scrubDeep(value, secrets);
  // Every account queue and its batch queue (batch parents carry the batch's progress), added as
  // they are found: configured here, published by a worker, or recorded by a producer.
  const queues: { queue: Queue; name: string }[] = [];
  const adapterFor = (queue: Queue, description: string) => {
    const adapter = new BullMQAdapter(queue, {
      readOnlyMode: readOnly,
      allowRetries: !readOnly,
      description,
    });
    adapter.setFormatter('data', scrub);
    adapter.setFormatter('returnValue', scrub);
    adapter.setFormatter('progress', scrub);
    adapter.setFormatter('name', (job: { name?: string }) => scrubSecrets(String(job.name ?? ''), secrets));
    return adapter;
  };

  const boardAdapter = new ExpressAdapter();
  boardAdapter.setBasePath('/');
  const bullBoard = createBullBoard({
    queues: [],
    serverAdapter: boardAdapter,
    options: {
      uiConfig: {
        boardTitle: readOnly ? 'hfq · read-only' : 'hfq',
        miscLinks: [{ text: 'hfq status', url: '/status' }],
        hideDocsLink: true,
      },
    },
  });
  const shown = new Set<string>();
  const addQueue = (name: string, description: string) => {
    if (shown.has(name)) return;
    shown.add(name);
    const queue = new Queue(name, { connection: redis, prefix });
    queue.on('error', () => {});
    queues.push({ queue, name });
    bullBoard.addQueue(adapterFor(queue, description));
  };
  const about = (id: string, tier: string | undefined) =>
    tier ? `account ${id} · tier ${tier}` : `account ${id} · not configured (no worker serves it)`;
  const showAccount = (id: string, tier: string | undefined) => {
    addQueue(accountQueueName(id), `jobs · lane router · ${about(id, tier)}`);
    addQueue(batchQueueName(id), `batches · ${about(id, tier)}`);
  };
  /** Every lane queue of the account (see docs/architecture.md, "Every route its own lane"). */
  const showLanes = async (id: string, tier: string | undefined) => {
    for (const lane of (await readLanes(redis, prefix, id)).keys()) {
      addQueue(laneQueueName(id, lane), `jobs · lane ${lane} · ${about(id, tier)}`);
    }
  };
  for (const a of accounts) showAccount(a.id, a.tier);
  const discover = async () => {
    const [registry, published] = await Promise.all([
      readAccountRegistry(redis, prefix),
      readPublishedAccounts(redis, prefix),
    ]);
    const tiers = new Map<string, string | undefined>(accounts.map((a) => [a.id, a.tier]));
    for (const [id, view] of published) if (!tiers.has(id)) tiers.set(id, view.tier);
    for (const id of registry) if (!tiers.has(id)) tiers.set(id, undefined);
    for (const [id, tier] of tiers) {
      showAccount(id, tier);
      await showLanes(id, tier);
    }
  };

  const app = express();
  app.disable('x-powered-by');
  app.use(boardAssets());
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  if (options.auth) app.use(basicAuth(options.auth));
  app.use((_req, res, next) => {
    res.set({
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'X-Frame-Options': 'DENY',
      'Content-Security-Policy': BOARD_CSP,
    });
    next();
  });
  if (readOnly) app.use(readOnlyGuard());
  app.use(rewriteBullBoardPage({ fontsHref: FONTS_CSS, readOnly }));
  app.use(rateLimitWriteGuard());
  app.use(scrubJsonResponses(secrets));

  const report = async (): Promise<StatusReport> => {
    const [statuses, workers] = await Promise.all([admin.status(), admin.workers()]);
    for (const s of statuses) showAccount(s.account, s.source === 'unconfigured' ? undefined : s.tier);
    return {
      generatedAt: new Date().toISOString(),
      readOnly,
      accounts: scrubDeep(statuses, secrets) as StatusReport['accounts'],
      workers,
    };
  };
  app.get('/history.json', async (req, res) => {
    try {
      const hours = Math.min(Math.max(Number(req.query.hours ?? 1) || 1, 1 / 60), HISTORY_MAX_HOURS);
      const statuses = await admin.status();
      const entries = await Promise.all(
        statuses.map(async (s) => [s.account, await admin.history(s.account, hours)] as const),
      );
      res
        .set('Cache-Control', 'no-store')
        .json({ generatedAt: new Date().toISOString(), hours, accounts: Object.fromEntries(entries) });
    } catch (err) {
      if (res.headersSent) return;
      res
        .status(503)
        .json({ error: 'history unavailable', message: scrubSecrets((err as Error).message, secrets) });
    }
  });
  app.get('/status.json', async (_req, res) => {
    try {
      res.set('Cache-Control', 'no-store').json(await report());
    } catch (err) {
      if (res.headersSent) return;
      res
        .status(503)
        .json({ error: 'status unavailable', message: scrubSecrets((err as Error).message, secrets) });
    }
  });
  app.get('/status', async (_req, res) => {
    try {
      const hours = Math.min(Math.max(Number(_req.query.hours ?? 1) || 1, 1 / 60), HISTORY_MAX_HOURS);
      const page = renderStatusPage(await report(), { boardPath: '/', hours });
      res
        .set({ 'Content-Security-Policy': STATUS_PAGE_CSP, 'Cache-Control': 'no-store' })
        .type('html')
        .send(page);
    } catch (err) {
      if (res.headersSent) return;
      res
        .status(503)
        .type('text/plain')
        .send(`status unavailable: ${scrubSecrets((err as Error).message, secrets)}\n`);
    }
  });
  app.use('/', boardAdapter.getRouter());

  let server: Server;
  try {
    // The board's connection fails fast once up (an answer beats a hung page): wait for it first.
    await checkRedisTarget(redis, options.connection, 10_000);
    await discover();
    server = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(options.port ?? 3000, host, (err?: Error) => (err ? reject(err) : resolve(s)));
    });
  } catch (err) {
    await Promise.all(queues.map(({ queue }) => queue.close()));
    await admin.close();
    redis.disconnect();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const shownHost =
    host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const url = `http://${shownHost}:${port}`;
  logger.info(
    {
      host,
      port,
      auth: options.auth ? 'basic' : 'off',
      readOnly,
      queues: queues.map(({ name }) => name),
    },
    'board listening',
  );
  const discovery = setInterval(
    () =>
      void discover().catch((err: Error) =>
        logger.warn({ err: scrubSecrets(err.message, secrets) }, 'queue discovery failed'),
      ),
    options.discoverEveryMs ?? 10_000,
  );
  discovery.unref();

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    close() {
      closing ??= (async () => {
        clearInterval(discovery);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
        await Promise.all(queues.map(({ queue }) => queue.close()));
        await admin.close();
        await redis.quit().catch(() => redis.disconnect());
      })();
      return closing;
    },
  };
}
