import { ValidationError } from '@hfq/shared';
import { adminFor, operatorConfig } from './shared-config.js';

export const LIMIT_HELP = `hfq limit <account> <max>    — change the account's router limit (requests per its window) now,
                               on every worker, without a restart; the learned rate restarts from it
hfq limit <account> default  — go back to the configured limit`;

export async function runLimit(env: NodeJS.ProcessEnv, args: string[]): Promise<void> {
  const [account, value] = args;
  if (!account || !value) throw new Error(`usage:\n${LIMIT_HELP}`);
  const max = value === 'default' ? undefined : Number(value);
  if (max !== undefined && !(Number.isInteger(max) && max >= 1))
    throw new ValidationError('hfq limit', [
      { path: 'max', message: `a whole number ≥ 1 or "default", got "${value}"` },
    ]);
  const admin = adminFor(operatorConfig(env));
  try {
    const limit = await admin.setLimit(account, max);
    console.log(
      `${account}: ${limit.max} requests per ${limit.durationMs} ms${max === undefined ? ' (configured)' : ''}`,
    );
  } finally {
    await admin.close();
  }
}
