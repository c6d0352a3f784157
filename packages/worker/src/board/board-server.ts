import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import {
  ACCOUNTS,
  type AccountConfigInput,
  accountQueueName,
  batchQueueName,
  type ConnectionInput,
  createLogger,
  createProducerConnection,
  DEFAULT_PREFIX,
  type Logger,
  parseOrThrow,
  scrubSecrets,
  whenReady,
} from '@hfq/shared';
import { Queue } from 'bullmq';
import express from 'express';
import { createAdmin } from '../admin.js';
import { type BasicCredentials, basicAuth } from './basic-auth.js';
import { scrubDeep, scrubJsonResponses } from './redaction.js';
import { renderStatusPage, STATUS_PAGE_CSP, type StatusReport } from './status-page.js';
import { rateLimitWriteGuard, readOnlyGuard } from './write-guard.js';

export interface BoardServerOptions {
  /** Redis URL or ioredis options. */
  connection: ConnectionInput;
  /** BullMQ key prefix, shared with producers and workers. @defaultValue `'hfq'` */
  prefix?: string;
  /** The accounts whose queues the board shows (their tokens only name domains and are scrubbed from answers). */
  accounts: AccountConfigInput[];
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
 * third party when it is open, so everything but the board's own origin is refused (the UI falls
 * back to system fonts). Its scripts are files of its own; its styles include inline ones.
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
  const accounts = parseOrThrow(ACCOUNTS, options.accounts, 'accounts');
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

  const redis = createProducerConnection(options.connection, `${prefix}:hfq-board`);
  redis.on('error', (err) =>
    logger.warn({ err: scrubSecrets(err.message, secrets) }, 'board redis connection error'),
  );
  const admin = createAdmin({ connection: options.connection, prefix, accounts });
  // Every account queue and its batch queue (batch parents carry the batch's progress).
  const queues = accounts.flatMap((a) => [
    { queue: new Queue(accountQueueName(a.id), { connection: redis, prefix }), about: 'jobs', account: a },
    { queue: new Queue(batchQueueName(a.id), { connection: redis, prefix }), about: 'batches', account: a },
  ]);
  const scrub = (value: unknown) => scrubDeep(value, secrets);
  const adapters = queues.map(({ queue, about, account }) => {
    const adapter = new BullMQAdapter(queue, {
      readOnlyMode: readOnly,
      allowRetries: !readOnly,
      description: `${about} · account ${account.id} · tier ${account.tier}`,
    });
    adapter.setFormatter('data', scrub);
    adapter.setFormatter('returnValue', scrub);
    adapter.setFormatter('progress', scrub);
    adapter.setFormatter('name', (job: { name?: string }) => scrubSecrets(String(job.name ?? ''), secrets));
    return adapter;
  });

  const boardAdapter = new ExpressAdapter();
  boardAdapter.setBasePath('/');
  createBullBoard({
    queues: adapters,
    serverAdapter: boardAdapter,
    options: {
      uiConfig: {
        boardTitle: 'hfq',
        miscLinks: [{ text: 'hfq status', url: '/status' }],
        hideDocsLink: true,
      },
    },
  });

  const app = express();
  app.disable('x-powered-by');
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
  app.use(rateLimitWriteGuard());
  app.use(scrubJsonResponses(secrets));

  const report = async (): Promise<StatusReport> => ({
    generatedAt: new Date().toISOString(),
    accounts: scrubDeep(await admin.status(), secrets) as StatusReport['accounts'],
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
      const page = renderStatusPage(await report(), { boardPath: '/' });
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
    await whenReady(redis, 10_000);
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
      queues: queues.map(({ queue }) => queue.name),
    },
    'board listening',
  );

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    close() {
      closing ??= (async () => {
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
