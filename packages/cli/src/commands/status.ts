import { readOnlyAdmin } from './read-only-config.js';
import { renderStatusText } from './status-text.js';

export const STATUS_HELP = `hfq status [--json] [--watch] — every account queue under the prefix: counts, learned rate, credits, spend, ETA, live workers

Needs only REDIS_URL and HFQ_PREFIX: accounts are read from what workers published and from the
queues producers added to (HFQ_ACCOUNTS_FILE or HFQ_ACCOUNT, when set, add local ones).
An account with deadline jobs gets the planner's split per model (real time and batches, finish
against the deadline, cost against all real time) and a line per provider batch: provider, state,
jobs, hedge time, deadline; and what they save against all real time, estimated.
  --json    one JSON document: { accounts, workers } (an account's batches: batchPlans, batches, batchSavingUsd)
  --watch   redraw every 2 s (HFQ_WATCH_SECONDS to change it) until Ctrl-C`;

/** Seconds between two redraws of `--watch`. */
const DEFAULT_WATCH_SECONDS = 2;

export async function runStatus(env: NodeJS.ProcessEnv, args: string[]): Promise<void> {
  const admin = readOnlyAdmin(env);
  const json = args.includes('--json');
  const watch = args.includes('--watch');
  const snapshot = async () => {
    const [accounts, workers] = await Promise.all([admin.status(), admin.workers()]);
    return { accounts, workers };
  };
  try {
    if (!watch) {
      const { accounts, workers } = await snapshot();
      console.log(
        json
          ? JSON.stringify({ accounts, workers }, null, 2)
          : renderStatusText(accounts, workers, Date.now()),
      );
      return;
    }
    await watchLoop(env, async () => {
      const { accounts, workers } = await snapshot();
      const body = json
        ? JSON.stringify({ accounts, workers })
        : renderStatusText(accounts, workers, Date.now());
      const stamp = `hfq status · ${new Date().toISOString().slice(0, 19).replace('T', ' ')} UTC · Ctrl-C to stop`;
      // Clear the screen and home the cursor, then draw: one write, no flicker of half frames.
      process.stdout.write(`\x1b[2J\x1b[H${stamp}\n\n${body}\n`);
    });
  } finally {
    await admin.close();
  }
}

/** Runs `draw` every few seconds until SIGINT/SIGTERM; resolves then (the caller closes and exits 0). */
async function watchLoop(env: NodeJS.ProcessEnv, draw: () => Promise<void>): Promise<void> {
  const seconds = Number(env.HFQ_WATCH_SECONDS ?? DEFAULT_WATCH_SECONDS);
  const everyMs = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : DEFAULT_WATCH_SECONDS * 1000;
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  const onSignal = () => stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (;;) {
      try {
        await draw();
      } catch (err) {
        process.stdout.write(`\x1b[2J\x1b[Hhfq status: ${(err as Error).message} (retrying)\n`);
      }
      let timer: NodeJS.Timeout | undefined;
      const tick = new Promise<'tick'>((resolve) => {
        timer = setTimeout(() => resolve('tick'), everyMs);
      });
      const outcome = await Promise.race([tick, stopped.then(() => 'stop' as const)]);
      clearTimeout(timer);
      if (outcome === 'stop') break;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdout.write('\n');
  }
}
