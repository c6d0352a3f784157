import { stat } from 'node:fs/promises';
import { parseCommand, UsageError } from '../usage.js';
import { openAccountQueue } from './account-queue.js';
import { runEnqueue } from './enqueue.js';

export const RETRY_HELP = `Usage: hfq retry <account>
       hfq retry <file.jsonl> [hfq enqueue's options: --account, --wait, --out, …]

Runs failed jobs again.
  <account>      every failed job of the account's queue goes back to waiting
  <file.jsonl>   the failed lines of a file: their failed jobs run again (a job no longer in
                 Redis is added anew); with --out, their failed rows are replaced by the new
                 outcome and every other row is kept. Invalid lines stay invalid`;

export async function runRetry(env: NodeJS.ProcessEnv, argv: string[]): Promise<void> {
  const target = argv.find((a) => !a.startsWith('-'));
  if (!target) throw new UsageError('missing <account> or <file.jsonl>', RETRY_HELP);
  // A file that exists, or a name that can only be a file (a missing one is then said to be missing).
  const isFile = (await stat(target).catch(() => undefined))?.isFile();
  if (isFile || /\.jsonl?$|\//.test(target)) {
    return runEnqueue(env, argv, { retryFailed: true, usage: RETRY_HELP });
  }
  parseCommand(argv, {}, RETRY_HELP, ['account']);
  const { queues, close } = await openAccountQueue(env, target, RETRY_HELP);
  try {
    let failed = 0;
    for (const queue of queues) {
      const count = await queue.getFailedCount();
      failed += count;
      if (count > 0) await queue.retryJobs({ state: 'failed', count: 1000 });
    }
    if (failed === 0) {
      console.log(`${target}: no failed jobs`);
      return;
    }
    console.log(`${target}: ${failed} failed job(s) back to waiting`);
  } finally {
    await close();
  }
}
