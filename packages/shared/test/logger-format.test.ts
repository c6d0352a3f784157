import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../../test/support/processes.js';

/** Logs: human lines for a person at a terminal (or HFQ_LOG_FORMAT=pretty), JSON for pipes; secrets redacted in both. */

const SCRIPT = `
import { createLogger } from '@hfq/shared';
createLogger({ name: 'fmt' }).info({ jobId: 'j1', hfToken: 'hf_secret_value' }, 'hello');
`;

function run(env: Record<string, string>): string {
  const out = spawnSync(
    process.execPath,
    ['--conditions=hfq-source', '--import', 'tsx', '--input-type=module', '--eval', SCRIPT],
    { cwd: ROOT, env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' },
  );
  return out.stdout;
}

describe('log format', () => {
  it('writes JSON lines when standard output is not a terminal', () => {
    const event = JSON.parse(run({}).trim()) as Record<string, unknown>;
    expect(event).toMatchObject({ name: 'fmt', jobId: 'j1', hfToken: '[redacted]', msg: 'hello' });
  });

  it('writes human lines with HFQ_LOG_FORMAT=pretty, still redacted', () => {
    const text = run({ HFQ_LOG_FORMAT: 'pretty' });
    expect(text).toMatch(/INFO.*\(fmt\).*hello/);
    expect(text).toMatch(/jobId.*j1/);
    expect(text).not.toMatch(/hf_secret_value/);
    expect(() => JSON.parse(text.split('\n')[0] ?? '')).toThrow();
  });
});
