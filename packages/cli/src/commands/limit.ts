import { parseCommand, UsageError } from '../usage.js';
import { adminFor, operatorConfig } from './shared-config.js';

export const LIMIT_HELP = `Usage: hfq limit <account> <max>    — change the account's router limit (requests per its window) now,
                               on every worker, without a restart; the learned rate restarts from it
hfq limit <account> default  — go back to the configured limit`;

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
  } finally {
    await admin.close();
  }
}
