import { readFileSync } from 'node:fs';
import { type HfqConfig, loadConfig } from '@hfq/shared';
import { type Admin, createAdmin } from '@hfq/worker';

/**
 * The config of the read-only views (`hfq status`, `hfq credits status`, `hfq board`): only
 * REDIS_URL and HFQ_PREFIX are needed; accounts come from what workers published, and
 * HFQ_ACCOUNTS_FILE or HFQ_ACCOUNT (with its token), when set, add local ones.
 */
export function readOnlyConfig(env: NodeJS.ProcessEnv): HfqConfig {
  return loadConfig(env, (path) => readFileSync(path, 'utf8'), { accountsOptional: true });
}

export function readOnlyAdmin(env: NodeJS.ProcessEnv): Admin {
  const config = readOnlyConfig(env);
  return createAdmin({ connection: config.connection, prefix: config.prefix, accounts: config.accounts });
}
