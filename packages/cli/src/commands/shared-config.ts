import { readFileSync } from 'node:fs';
import { type HfqConfig, loadConfig } from '@hfq/shared';
import { createAdmin } from '@hfq/worker';

/** The config every operator command reads: the same environment as the workers'. */
export function operatorConfig(env: NodeJS.ProcessEnv): HfqConfig {
  return loadConfig(env, (path) => readFileSync(path, 'utf8'));
}

export function adminFor(config: HfqConfig) {
  return createAdmin({ connection: config.connection, prefix: config.prefix, accounts: config.accounts });
}

export function money(usd: number): string {
  return `$${usd.toFixed(usd < 1 ? 4 : 2)}`;
}

/** A plain text table: columns padded to their widest cell. */
export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
