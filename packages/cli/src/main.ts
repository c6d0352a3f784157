#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { ConfigError, createLogger, ValidationError } from '@hfq/shared';
import {
  isConnectionLost,
  maskUrlCredentials,
  RedisErrorLog,
  routeIoredisConsole,
} from '@hfq/shared/internal';
import { runWorker, WORKER_HELP } from './commands/worker.js';
import { parseCommand, UsageError } from './usage.js';

const HELP = `hfq — a distributed job queue for batched Hugging Face inference under rate limits

Usage: hfq <command> [options]

Commands:
  worker    run a worker process (configured by environment variables)
  board     serve Bull Board for every account queue, and hfq's status view
  sim       run the Hugging Face simulator (for tests and local stacks)
  demo      run the demo: local Redis, simulator, two worker processes, a few hundred jobs
  status    per-account counts, learned rate, credits and spend
  credits   credits status | credits reset <account> [--key <provider>]
  limit     limit <account> <max|default>: change an account's rate limit on every worker, now
  enqueue   enqueue a JSONL file of jobs (hfq's own lines or the OpenAI Batch format)
  retry     retry <account> | retry <file.jsonl>: run failed jobs again
  queue     queue pause|resume|clean|drain <account>: an operator's actions on an account's queue

Run "hfq <command> --help" for a command's options; "hfq --version" for the version.`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  // ioredis's own console warnings go to a log on stderr (stdout may be JSON: status --json);
  // the worker routes them to its own log (commands/worker.ts).
  if (command !== 'worker') {
    routeIoredisConsole(
      () =>
        new RedisErrorLog(
          createLogger({ name: 'hfq', stream: 'stderr', level: process.env.LOG_LEVEL ?? 'warn' }),
        ),
    );
  }
  switch (command) {
    case 'worker':
      if (wantsHelp) return void console.log(WORKER_HELP);
      parseCommand(rest, {}, WORKER_HELP);
      return runWorker(process.env);
    case 'board': {
      const { runBoard, BOARD_HELP } = await import('./commands/board.js');
      if (wantsHelp) return void console.log(BOARD_HELP);
      parseCommand(rest, {}, BOARD_HELP);
      return runBoard(process.env).catch((err: unknown) => {
        throw portInUse(err, 'HFQ_BOARD_PORT', BOARD_HELP);
      });
    }
    case 'sim': {
      const { runSim, SIM_HELP } = await import('./commands/sim.js');
      if (wantsHelp) return void console.log(SIM_HELP);
      parseCommand(rest, {}, SIM_HELP);
      return runSim(process.env).catch((err: unknown) => {
        throw portInUse(err, 'SIM_PORT', SIM_HELP);
      });
    }
    case 'demo': {
      const { runDemo, DEMO_HELP } = await import('./commands/demo.js');
      if (wantsHelp) return void console.log(DEMO_HELP);
      return runDemo(process.env, rest);
    }
    case 'status': {
      const { runStatus, STATUS_HELP } = await import('./commands/status.js');
      if (wantsHelp) return void console.log(STATUS_HELP);
      parseCommand(rest, STATUS_OPTIONS, STATUS_HELP);
      return runStatus(process.env, rest);
    }
    case 'credits': {
      const { runCredits, CREDITS_HELP } = await import('./commands/credits.js');
      if (wantsHelp) return void console.log(CREDITS_HELP);
      return runCredits(process.env, rest);
    }
    case 'limit': {
      const { runLimit, LIMIT_HELP } = await import('./commands/limit.js');
      if (wantsHelp) return void console.log(LIMIT_HELP);
      return runLimit(process.env, rest);
    }
    case 'enqueue': {
      const { runEnqueue, ENQUEUE_HELP } = await import('./commands/enqueue.js');
      if (wantsHelp) return void console.log(ENQUEUE_HELP);
      return runEnqueue(process.env, rest);
    }
    case 'retry': {
      const { runRetry, RETRY_HELP } = await import('./commands/retry.js');
      if (wantsHelp) return void console.log(RETRY_HELP);
      return runRetry(process.env, rest);
    }
    case 'queue': {
      const { runQueue, QUEUE_HELP } = await import('./commands/queue.js');
      if (wantsHelp) return void console.log(QUEUE_HELP);
      return runQueue(process.env, rest);
    }
    case '--version':
    case '-V':
    case 'version':
      console.log(`hfq ${cliVersion()}`);
      return;
    case '--help':
    case '-h':
    case 'help':
      console.log(HELP);
      return;
    case undefined:
      // No command is a usage error, as everywhere: the usage on stderr, exit 2.
      console.error(HELP);
      process.exitCode = 2;
      return;
    default:
      console.error(`hfq: unknown command "${command}"\n\n${HELP}`);
      process.exitCode = 2;
  }
}

/** The version of @hfq/cli (its package.json, beside src/ and dist/). */
function cliVersion(): string {
  const text = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

/** The flags `hfq status` takes (its own parsing reads them; checked here for usage errors). */
const STATUS_OPTIONS = {
  json: { type: 'boolean' },
  watch: { type: 'boolean' },
} as const;

/** A port already taken is a usage error naming the variable that sets it, not a stack trace. */
function portInUse(err: unknown, variable: string, usage: string): unknown {
  const e = err as NodeJS.ErrnoException & { port?: number };
  if (e?.code !== 'EADDRINUSE') return err;
  return new UsageError(
    `port ${e.port ?? ''} is already in use (set ${variable} to another port)`.replace('  ', ' '),
    usage,
  );
}

const argv = process.argv.slice(2);
// A background read (a progress note, a status poll) whose Redis went away rejects with nobody
// awaiting it: the connection's own log line reports the outage once and it reconnects, so such a
// rejection ends nothing. Any other is a bug: one line (the stack with HFQ_DEBUG=1), exit 1.
process.on('unhandledRejection', (err: unknown) => {
  if (isConnectionLost(err)) {
    if (process.env.HFQ_DEBUG) console.error((err as Error)?.stack ?? String(err));
    return;
  }
  const message = err instanceof Error ? err.message : String(err);
  const text = process.env.HFQ_DEBUG ? ((err as Error)?.stack ?? message) : message;
  console.error(`${argv[0] ? `hfq ${argv[0]}` : 'hfq'}: ${maskUrlCredentials(text)}`);
  process.exit(1);
});
main(argv).catch((err: unknown) => {
  const command = argv[0] ? `hfq ${argv[0]}` : 'hfq';
  if (err instanceof UsageError) {
    console.error(`${command}: ${err.message}\n\n${err.usage}`);
    process.exit(2);
  }
  if (err instanceof ConfigError) {
    console.error(`${command}: configuration error: ${err.message}`);
    process.exit(2);
  }
  if (err instanceof ValidationError) {
    console.error(`${command}: ${err.message}`);
    process.exit(2);
  }
  // Anything else is one line too; the stack only when asked for (HFQ_DEBUG=1).
  const message = err instanceof Error ? err.message : String(err);
  const text = process.env.HFQ_DEBUG ? ((err as Error)?.stack ?? message) : message;
  console.error(`${command}: ${maskUrlCredentials(text)}`);
  process.exit(1);
});
