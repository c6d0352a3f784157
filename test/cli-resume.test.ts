import { linkSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { batchStateKey } from '@hfq/shared/internal';
import { expectedEmbedding } from '@hfq/sim';
import { describe, expect, it } from 'vitest';
import { HfqProcess } from './support/processes.js';
import { keysUnder, redisUrl } from './support/redis.js';
import { startStack } from './support/stack.js';
import { waitFor } from './support/wait.js';

/**
 * `hfq enqueue --out` across Ctrl-C and crashes: a re-run keeps what the output file holds, writes
 * only what is missing, and never loses a result that was paid for; `--out` naming the input is
 * refused; `--wait` exits non-zero when a job failed.
 */

const TOKEN = 'hf_test_cliresume_0123456789abcdef';
const MODEL = 'sentence-transformers/all-MiniLM-L6-v2';
const line = (i: number, model = MODEL) =>
  JSON.stringify({ task: 'feature-extraction', model, inputs: `resume line ${i}` });

describe('hfq enqueue: resume, output safety, exit status', () => {
  /** A stack of the test's own (simulator, prefix, workers on demand), a folder and the CLI's environment. */
  const setup = async (label: string) => {
    const stack = await startStack({
      label,
      sim: { latency: { baseMs: 10 } },
      tokens: { [TOKEN]: { label: 'resume' } },
      accounts: [{ id: 'acme', tier: 'pro', hfToken: TOKEN, limit: { max: 1000, durationMs: 1000 } }],
      worker: { concurrency: 2 },
    });
    const dir = mkdtempSync(join(tmpdir(), 'hfq-cli-resume-'));
    stack.defer(() => rmSync(dir, { recursive: true, force: true }));
    const env = { REDIS_URL: redisUrl(), HFQ_PREFIX: stack.prefix };
    return {
      sim: stack.sim,
      prefix: stack.prefix,
      admin: stack.redis(),
      dir,
      env,
      startWorker: () => stack.startWorker(),
    };
  };

  const readResults = (path: string) =>
    readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { line: number; ok: boolean; output?: unknown; error?: string });

  it('refuses --out naming the input file (same path or same inode) before touching anything', async () => {
    const { prefix, env, admin, dir } = await setup('cliout');
    const input = join(dir, 'same.jsonl');
    const content = `${[1, 2, 3].map((i) => line(i)).join('\n')}\n`;
    writeFileSync(input, content);
    const hardLink = join(dir, 'same-link.jsonl');
    linkSync(input, hardLink);
    for (const out of [input, hardLink, join(dir, '.', 'same.jsonl')]) {
      const proc = HfqProcess.start(['enqueue', input, '--account', 'acme', '--out', out], env);
      const exit = await proc.exited;
      expect(exit.code).toBe(2);
      expect(proc.lines[0]).toMatch(/--out .* is the input file/);
      expect(proc.lines.join('\n')).not.toMatch(/\n\s+at /);
      expect(readFileSync(input, 'utf8')).toBe(content);
    }
    expect(await keysUnder(admin, prefix)).toEqual([]);
  });

  it('exits 1 when a job failed, and its last line says how many', async () => {
    const { env, startWorker, dir } = await setup('clifail');
    await startWorker();
    const input = join(dir, 'failing.jsonl');
    const output = join(dir, 'failing-out.jsonl');
    writeFileSync(
      input,
      `${[line(1), line(2, 'nobody/no-such-model'), line(3), line(4, 'nobody/no-such-model')].join('\n')}\n`,
    );
    const proc = HfqProcess.start(['enqueue', input, '--account', 'acme', '--out', output], env);
    const exit = await proc.exited;
    expect(exit.code, proc.lines.join('\n')).toBe(1);
    expect(proc.lines[proc.lines.length - 1]).toMatch(/failed 2 of 4/);
    expect(readResults(output).map((r) => [r.line, r.ok])).toEqual([
      [1, true],
      [2, false],
      [3, true],
      [4, false],
    ]);
  });

  it('shows no rate for results that were ready before a resumed run started', async () => {
    const { env, startWorker, admin, dir } = await setup('clirate');
    await startWorker();
    const n = 200;
    const input = join(dir, 'rate.jsonl');
    writeFileSync(input, `${Array.from({ length: n }, (_, i) => line(i + 1)).join('\n')}\n`);
    const enqueue = HfqProcess.start(['enqueue', input, '--account', 'acme'], env);
    expect((await enqueue.exited).code).toBe(0);
    await waitFor(
      async () => (await admin.zcard(`${env.HFQ_PREFIX}:account-{acme}:completed`)) === n,
      'every job done',
      60_000,
    );
    // Every result is ready before this run: none of them is a completion it saw happen.
    const waiting = HfqProcess.start(['enqueue', input, '--account', 'acme', '--wait'], env);
    expect((await waiting.exited).code, waiting.lines.join('\n')).toBe(0);
    const progress = waiting.lines.filter((l) => l.includes(`enqueued ${n}/${n}`));
    expect(progress.length).toBeGreaterThan(0);
    for (const l of progress) expect(l).toMatch(/ {2}-\/s {2}ETA -/);
    expect(waiting.lines[waiting.lines.length - 1]).toMatch(new RegExp(`done ${n}, failed 0 of ${n}`));
  });

  for (const mode of ['single jobs', 'batch'] as const) {
    for (const stop of ['SIGINT', 'SIGKILL'] as const) {
      it(`${mode}: a re-run after ${stop} keeps what the output holds and loses no paid-for result`, async () => {
        const { sim, prefix, env, startWorker, admin, dir } = await setup(
          mode === 'batch' ? 'clirb' : 'clirs',
        );
        const n = 120;
        const input = join(dir, `${mode}-${stop}.jsonl`);
        const output = join(dir, `${mode}-${stop}-out.jsonl`);
        writeFileSync(input, `${Array.from({ length: n }, (_, i) => line(i + 1)).join('\n')}\n`);
        const args = ['enqueue', input, '--account', 'acme', '--out', output];
        if (mode === 'batch') args.push('--batch');

        // The first run: some results are done and read when the workers stop, the rest wait.
        const first = HfqProcess.start(args, env);
        const worker = await startWorker();
        const done = async () =>
          mode === 'batch'
            ? Number(
                (await admin.hget(batchStateKey(prefix, 'acme', `f${await batchIdOf(first)}`), 'ok')) ?? 0,
              )
            : await admin.zcard(`${prefix}:account-{acme}:completed`);
        await waitFor(async () => (await done()) >= 30, 'some results done', 60_000);
        await worker.close();
        const stopped = await first.stop(stop);
        if (stop === 'SIGINT') {
          expect(stopped.code, first.lines.join('\n')).toBe(130);
          expect(first.lines[first.lines.length - 1]).toBe('interrupted: re-run the same command to resume');
        }
        const kept = readFileSync(output, 'utf8');

        // The re-run: the rest runs; what the file held stays as it was.
        await startWorker();
        const again = HfqProcess.start(args, env);
        const exit = await again.exited;
        expect(exit.code, again.lines.join('\n')).toBe(0);
        expect(again.lines[again.lines.length - 1]).toMatch(new RegExp(`failed 0 of ${n}`));
        const text = readFileSync(output, 'utf8');
        expect(text.startsWith(kept.slice(0, kept.lastIndexOf('\n') + 1))).toBe(true);
        const results = readResults(output);
        expect(results.map((r) => r.line)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
        results.forEach((r) => {
          expect(r.ok, JSON.stringify(r)).toBe(true);
          expect(r.output).toEqual(expectedEmbedding(`resume line ${r.line}`));
        });
        // Nothing ran twice: every line was paid for once.
        expect(sim.received({ route: 'router' })).toBe(n);
      });
    }
  }
});

/** The batch id the CLI printed (`batch f… (account …)`), without the leading `f`. */
async function batchIdOf(proc: HfqProcess): Promise<string> {
  const printed = await proc.waitForLine((l) => /^batch f[0-9a-f]+ /.test(l), 60_000);
  return (/^batch f([0-9a-f]+) /.exec(printed) as RegExpExecArray)[1] as string;
}
