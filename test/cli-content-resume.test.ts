import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectedEmbedding } from '@hfq/sim';
import { describe, expect, it } from 'vitest';
import { HfqProcess } from './support/processes.js';
import { startStack } from './support/stack.js';

/**
 * `hfq enqueue` resumes by content, not position: after an edit only the changed line is added
 * (and paid for), `--out` keeps the rows of every unchanged line and drops the changed one's, a
 * re-run that adds nothing says so, and an output file written for another input is refused.
 */

const TOKEN = 'hf_test_cli_content_0123456789abcdef';
const MODEL = 'sentence-transformers/all-MiniLM-L6-v2';
const line = (text: string, id: string) =>
  JSON.stringify({ custom_id: id, task: 'feature-extraction', model: MODEL, inputs: text });

const rowsOf = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map(
      (l) =>
        JSON.parse(l) as {
          line: number;
          custom_id: string;
          ok: boolean;
          output: unknown;
          input_hash: string;
        },
    );

/**
 * A stack with one worker process for account `acme`, the CLI's environment for it, and a
 * temporary folder (removed with the stack) holding the run's input and output files.
 */
async function runWithWorker(label: string, dirPrefix: string) {
  const stack = await startStack({
    label,
    sim: { latency: { baseMs: 5 } },
    tokens: { [TOKEN]: { label: 'acme' } },
    accounts: [{ id: 'acme', tier: 'pro', hfToken: TOKEN, limit: { max: 1000, durationMs: 1000 } }],
  });
  await stack.startWorkerProcesses(1);
  const dir = mkdtempSync(join(tmpdir(), dirPrefix));
  stack.defer(() => rmSync(dir, { recursive: true, force: true }));
  const env = { REDIS_URL: stack.redisUrl, HFQ_PREFIX: stack.prefix };
  return { stack, dir, env, input: join(dir, 'jobs.jsonl'), output: join(dir, 'out.jsonl') };
}

describe('hfq enqueue: resume by content', () => {
  it('after an edit adds only the changed line and keeps every unchanged result', async () => {
    const { stack, dir, env, input, output } = await runWithWorker('clicontent', 'hfq-cli-content-');
    const args = ['enqueue', input, '--account', 'acme', '--out', output];
    const routerRequests = () => stack.sim.received({ route: 'router' });

    writeFileSync(input, `${[line('alpha', 'a'), line('beta', 'b'), line('gamma', 'c')].join('\n')}\n`);
    const first = HfqProcess.start(args, env);
    expect((await first.exited).code, first.lines.join('\n')).toBe(0);
    expect(routerRequests()).toBe(3);
    const before = rowsOf(output);
    expect(before.map((r) => r.custom_id)).toEqual(['a', 'b', 'c']);

    // Edit line 2: only it is added; lines 1 and 3 keep their rows as they were.
    writeFileSync(
      input,
      `${[line('alpha', 'a'), line('beta, edited', 'b'), line('gamma', 'c')].join('\n')}\n`,
    );
    const second = HfqProcess.start(args, env);
    expect((await second.exited).code, second.lines.join('\n')).toBe(0);
    expect(routerRequests()).toBe(4);
    const after = rowsOf(output);
    expect(after.map((r) => [r.line, r.custom_id, r.ok])).toEqual([
      [1, 'a', true],
      [2, 'b', true],
      [3, 'c', true],
    ]);
    expect(after[0]).toEqual(before[0]);
    expect(after[2]).toEqual(before[2]);
    expect(after[1]?.output).toEqual(expectedEmbedding('beta, edited'));
    expect(after[1]?.input_hash).not.toBe(before[1]?.input_hash);
    const admin = stack.redis();
    expect(await admin.zcard(`${stack.prefix}:account-{acme}:completed`)).toBe(4);

    // A line inserted above: the others move, keep their rows, and only the new line runs.
    writeFileSync(
      input,
      `${[line('new first', 'z'), line('alpha', 'a'), line('beta, edited', 'b'), line('gamma', 'c')].join('\n')}\n`,
    );
    const third = HfqProcess.start(args, env);
    expect((await third.exited).code, third.lines.join('\n')).toBe(0);
    expect(routerRequests()).toBe(5);
    expect(rowsOf(output).map((r) => [r.line, r.custom_id])).toEqual([
      [1, 'z'],
      [2, 'a'],
      [3, 'b'],
      [4, 'c'],
    ]);

    // Nothing changed: the re-run says so and adds nothing.
    const fourth = HfqProcess.start(args, env);
    expect((await fourth.exited).code).toBe(0);
    expect(fourth.lines).toEqual([`nothing to add: --out ${output} holds a row for each of the 4 line(s)`]);
    expect(routerRequests()).toBe(5);

    // Without --out, the same file adds no job either, and says so.
    const fifth = HfqProcess.start(['enqueue', input, '--account', 'acme'], env);
    expect((await fifth.exited).code).toBe(0);
    expect(fifth.lines).toContain('nothing new: all 4 job(s) of this file are already queued or done');

    // An output file written for another input is refused, and left as it was.
    const other = join(dir, 'other.jsonl');
    writeFileSync(other, `${line('something else', 'x')}\n`);
    const kept = readFileSync(output, 'utf8');
    const refused = HfqProcess.start(['enqueue', other, '--account', 'acme', '--out', output], env);
    expect((await refused.exited).code).toBe(2);
    expect(refused.lines[0]).toMatch(
      /--out .*out\.jsonl holds results of another input \(none of its 4 rows is for a line of .*other\.jsonl\); choose another file/,
    );
    expect(readFileSync(output, 'utf8')).toBe(kept);
    expect(routerRequests()).toBe(5);
  });
});

describe('hfq enqueue --batch: one batch per content', () => {
  it('the same content never starts a second batch; an edited input is refused for the batch’s output', async () => {
    const { stack, dir, env, input, output } = await runWithWorker('clicontentb', 'hfq-cli-contentb-');
    const batchIdOf = (lines: string[]) => lines.find((l) => /^batch f[0-9a-f]+ /.test(l))?.split(' ')[1];

    writeFileSync(input, `${[line('one', 'a'), line('two', 'b'), line('three', 'c')].join('\n')}\n`);
    const first = HfqProcess.start(['enqueue', input, '--account', 'acme', '--batch', '--out', output], env);
    expect((await first.exited).code, first.lines.join('\n')).toBe(0);
    expect(stack.sim.received({ route: 'router' })).toBe(3);
    // The same requests with other ids and another layout: the same batch, nothing runs again.
    const copy = join(dir, 'copy.jsonl');
    writeFileSync(copy, `${[line('one', 'x'), line('two', 'y'), line('three', 'z')].join('\n\n')}\n`);
    const again = HfqProcess.start(['enqueue', copy, '--account', 'acme', '--batch'], env);
    expect((await again.exited).code, again.lines.join('\n')).toBe(0);
    expect(batchIdOf(again.lines)).toBe(batchIdOf(first.lines));
    expect(stack.sim.received({ route: 'router' })).toBe(3);

    // An edited input for the batch's output: refused, rather than a second batch paying for the
    // unchanged lines again.
    writeFileSync(input, `${[line('one', 'a'), line('two, edited', 'b'), line('three', 'c')].join('\n')}\n`);
    const edited = HfqProcess.start(['enqueue', input, '--account', 'acme', '--batch', '--out', output], env);
    expect((await edited.exited).code).toBe(2);
    expect(edited.lines[0]).toMatch(
      /holds batch f[0-9a-f]+, for other content: --batch resumes only an unchanged input/,
    );
    expect(stack.sim.received({ route: 'router' })).toBe(3);
  });
});
