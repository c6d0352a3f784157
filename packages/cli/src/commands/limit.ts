import type { OverrideOutcome } from '@hfq/shared/internal';
import { parseCommand, UsageError } from '../usage.js';
import { adminFor, operatorConfig } from './shared-config.js';

export const LIMIT_HELP = `Usage: hfq limit <account> <max>    — change the account's router limit (requests per its window) now,
                               on every worker, without a restart; the learned rate restarts from it
hfq limit <account> default  — go back to the configured limit`;

/** What the change did to what the workers had learned (one line). */
function learnedText(learned: OverrideOutcome, nowMs: number): string {
  const before =
    learned.previousRate === undefined ? 'none' : String(Math.round(learned.previousRate * 100) / 100);
  const pause =
    learned.keptPausedUntil > 0
      ? `; the upstream's stated wait is kept (about ${Math.max(0, Math.ceil((learned.keptPausedUntil - nowMs) / 1000))} s left)`
      : '';
  return `learned state: rate ${before} → starts from the new limit; cleared ${learned.cleared.join(', ')}${pause}`;
}

export async function runLimit(env: NodeJS.ProcessEnv, args: string[]): Promise<void> {
  const { positionals } = parseCommand(args, {}, LIMIT_HELP, ['account', 'max']);
  const [account, value] = positionals;
  if (!account) throw new UsageError('missing <account>', LIMIT_HELP);
  if (!value) throw new UsageError('missing <max> (a whole number ≥ 1, or "default")', LIMIT_HELP);
  const max = value === 'default' ? undefined : Number(value);
  if (max !== undefined && !(/^\d+$/.test(value) && Number.isInteger(max) && max >= 1))
    throw new UsageError(`<max> takes a whole number ≥ 1 or "default", got "${value}"`, LIMIT_HELP);
  const config = operatorConfig(env);
  if (!config.accounts.some((a) => a.id === account)) {
    throw new UsageError(
      `unknown account "${account}" (configured: ${config.accounts.map((a) => a.id).join(', ') || 'none'})`,
      LIMIT_HELP,
    );
  }
  const admin = adminFor(config);
  try {
    const limit = await admin.setLimit(account, max);
    console.log(
      `${account}: ${limit.max} requests per ${limit.durationMs} ms${max === undefined ? ' (configured)' : ''}`,
    );
    console.log(learnedText(limit.learned, Date.now()));
  } finally {
    await admin.close();
  }
}
