import type { OverrideOutcome } from '@hfq/shared/internal';
import { parseCommand, UsageError } from '../usage.js';
import { readOnlyAdmin } from './read-only-config.js';

export const LIMIT_HELP = `Usage: hfq limit <account> <max> [--for 2h]  — override the account's router limit (requests per
                               its window) now, on every worker, without a restart; the learned rate
                               restarts from it. --for: the override lapses by itself after that long
                               (30s, 15m, 2h, 1d); without it, it stays until "default"
hfq limit <account> default  — go back to the configured limit

Needs only REDIS_URL and HFQ_PREFIX: the account is found in what its workers published.`;

const LIMIT_OPTIONS = { for: { type: 'string' } } as const;

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `15m`, `2h`, `1d` → ms; a `UsageError` otherwise. */
function durationOption(value: string): number {
  const match = /^(\d+)(s|m|h|d)$/.exec(value.trim());
  const ms = match ? Number(match[1]) * (UNITS[match[2] as string] as number) : Number.NaN;
  if (!(ms >= 1_000 && ms <= 366 * 86_400_000))
    throw new UsageError(
      `--for takes a duration such as 30s, 15m, 2h or 1d (up to 366d), got "${value}"`,
      LIMIT_HELP,
    );
  return ms;
}

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
  const { positionals, values } = parseCommand(args, LIMIT_OPTIONS, LIMIT_HELP, ['account', 'max']);
  const [account, value] = positionals;
  if (!account) throw new UsageError('missing <account>', LIMIT_HELP);
  if (!value) throw new UsageError('missing <max> (a whole number ≥ 1, or "default")', LIMIT_HELP);
  const max = value === 'default' ? undefined : Number(value);
  if (max !== undefined && !(/^\d+$/.test(value) && Number.isInteger(max) && max >= 1))
    throw new UsageError(`<max> takes a whole number ≥ 1 or "default", got "${value}"`, LIMIT_HELP);
  if (max === undefined && values.for !== undefined)
    throw new UsageError('--for goes with a <max>, not with "default"', LIMIT_HELP);
  const forMs = values.for === undefined ? undefined : durationOption(values.for);
  const admin = readOnlyAdmin(env);
  try {
    const limit = await admin
      .setLimit(account, max, forMs === undefined ? {} : { forMs })
      .catch((err: Error) => {
        if (err.name === 'UnknownAccountError') throw new UsageError(err.message, LIMIT_HELP);
        throw err;
      });
    const window = `${limit.durationMs} ms`;
    console.log(
      max === undefined
        ? `${account}: ${limit.max} requests per ${window} (configured)`
        : `${account}: ${limit.max} requests per ${window} (override of the configured ${limit.configuredMax}; ${
            limit.untilMs === undefined
              ? 'until "hfq limit <account> default"'
              : `until ${new Date(limit.untilMs).toISOString()}`
          })`,
    );
    console.log(learnedText(limit.learned, Date.now()));
  } finally {
    await admin.close();
  }
}
