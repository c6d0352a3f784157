import { ConfigError, createLogger } from '@hfq/shared';
import { createBoardServer } from '@hfq/worker';
import { readOnlyConfig } from './read-only-config.js';

export const BOARD_HELP = `hfq board — Bull Board for every account queue, and hfq's status view

Needs only REDIS_URL and HFQ_PREFIX: it shows every account queue under the prefix (accounts that
workers published and queues producers added to; HFQ_ACCOUNTS_FILE or HFQ_ACCOUNT add local ones), plus:
  HFQ_BOARD_PORT       port (default 3000; 0 picks a free one)
  HFQ_BOARD_HOST       interface (default 0.0.0.0)
  HFQ_BOARD_USER       basic-auth user      } required, unless HFQ_BOARD_AUTH=off
  HFQ_BOARD_PASSWORD   basic-auth password  }
  HFQ_BOARD_AUTH       basic (default) or off; off is accepted only with HFQ_BOARD_HOST=127.0.0.1
  HFQ_BOARD_READ_ONLY  true: every write answers 405 and the action buttons are hidden

Pages: /  (Bull Board), /status (the cockpit: charts of the last hour, ETA and cost to complete,
live workers, rates, credits, spend), /status.json, /history.json?hours=N, /healthz (no auth). The queues' rate limits are hfq's and cannot be changed from the board.`;

export async function runBoard(env: NodeJS.ProcessEnv): Promise<void> {
  const config = readOnlyConfig(env);
  if (config.boardAuth && (config.boardUser === undefined || config.boardPassword === undefined)) {
    throw new ConfigError(
      'HFQ_BOARD_USER',
      'missing: the board requires basic auth; set HFQ_BOARD_USER and HFQ_BOARD_PASSWORD ' +
        '(or HFQ_BOARD_AUTH=off with HFQ_BOARD_HOST=127.0.0.1 for a loopback-only board)',
    );
  }
  const logger = createLogger({ name: 'hfq-board', level: config.logLevel });
  const board = await createBoardServer({
    connection: config.connection,
    prefix: config.prefix,
    accounts: config.accounts,
    port: config.boardPort,
    host: config.boardHost,
    auth:
      config.boardAuth && config.boardUser !== undefined && config.boardPassword !== undefined
        ? { user: config.boardUser, password: config.boardPassword }
        : false,
    readOnly: config.boardReadOnly,
    logger,
  });
  logger.info({ url: board.url, port: board.port }, 'board ready');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    logger.info({ signal }, 'board stopping');
    void board.close().then(
      () => process.exit(0),
      (err: Error) => {
        logger.error({ err: err.message }, 'error while stopping the board');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
