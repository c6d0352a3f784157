import { ValidationError } from '@hfq/shared';
import { describe, expect, it } from 'vitest';
import { type BatchBase, ChildPlanner, itemJob, splitOutput, validateBase } from '../src/batch-items.js';

/** Unit tests: how items become child jobs, and how a child's output goes back to its items. */

const EMBED: BatchBase = {
  account: 'acme',
  task: 'feature-extraction',
  model: 'sentence-transformers/all-MiniLM-L6-v2',
};
const SIMILARITY: BatchBase = { account: 'acme', task: 'sentence-similarity', model: 'org/similarity' };

function plan(base: BatchBase, items: unknown[], coalesce: number) {
  const planner = new ChildPlanner(base.task, coalesce);
  const children = items.flatMap((item, index) => planner.push(index, itemJob(base, item, index)));
  return [...children, ...planner.flush()];
}

describe('batch items', () => {
  it('makes one child per item without coalescing', () => {
    const children = plan(EMBED, ['a', 'b', 'c'], 1);
    expect(children.map((c) => [c.batch, c.job.task === 'feature-extraction' && c.job.inputs])).toEqual([
      [{ index: 0, count: 1 }, 'a'],
      [{ index: 1, count: 1 }, 'b'],
      [{ index: 2, count: 1 }, 'c'],
    ]);
  });

  it('coalesces up to `coalesce` texts per child, in order, always as an array', () => {
    const children = plan(EMBED, ['a', 'b', 'c', 'd', 'e'], 2);
    expect(children.map((c) => [c.batch, c.job.task === 'feature-extraction' && c.job.inputs])).toEqual([
      [{ index: 0, count: 2 }, ['a', 'b']],
      [{ index: 2, count: 2 }, ['c', 'd']],
      [{ index: 4, count: 1 }, ['e']],
    ]);
  });

  it('coalesces sentence-similarity items that share a source, counting sentences', () => {
    const items = [
      { source_sentence: 's', sentences: ['a', 'b'] },
      { source_sentence: 's', sentences: ['c'] },
      { source_sentence: 's', sentences: ['d', 'e'] },
      { source_sentence: 't', sentences: ['f'] },
    ];
    const children = plan(SIMILARITY, items, 3);
    expect(children.map((c) => [c.batch, c.job.task === 'sentence-similarity' && c.job.inputs])).toEqual([
      [
        { index: 0, count: 2, sizes: [2, 1] },
        { source_sentence: 's', sentences: ['a', 'b', 'c'] },
      ],
      [
        { index: 2, count: 1, sizes: [2] },
        { source_sentence: 's', sentences: ['d', 'e'] },
      ],
      [
        { index: 3, count: 1, sizes: [1] },
        { source_sentence: 't', sentences: ['f'] },
      ],
    ]);
  });

  it('starts a new child before a coalesced job would pass the job size limit', () => {
    const big = 'x'.repeat(200 * 1024);
    const children = plan(EMBED, [big, big, big], 32);
    expect(children.map((c) => c.batch.count)).toEqual([2, 1]);
  });

  it('splits outputs back per item, and fails the items of a wrong-sized answer', () => {
    const [child] = plan(EMBED, ['a', 'b'], 4);
    if (!child) throw new Error('no child');
    expect(splitOutput(child.job, child.batch, [[1], [2]])).toEqual([
      { ok: true, output: [1] },
      { ok: true, output: [2] },
    ]);
    expect(splitOutput(child.job, child.batch, [[1]])).toEqual([
      { ok: false, error: 'upstream answered 1 outputs for 2 item(s)' },
      { ok: false, error: 'upstream answered 1 outputs for 2 item(s)' },
    ]);
    const [similar] = plan(
      SIMILARITY,
      [
        { source_sentence: 's', sentences: ['a', 'b'] },
        { source_sentence: 's', sentences: ['c'] },
      ],
      4,
    );
    if (!similar) throw new Error('no child');
    expect(splitOutput(similar.job, similar.batch, [0.1, 0.2, 0.3])).toEqual([
      { ok: true, output: [0.1, 0.2] },
      { ok: true, output: [0.3] },
    ]);
    const [single] = plan(EMBED, ['a'], 1);
    if (!single) throw new Error('no child');
    expect(splitOutput(single.job, single.batch, [0.5, 0.5])).toEqual([{ ok: true, output: [0.5, 0.5] }]);
  });

  it('takes chat items as messages or as one user message', () => {
    const base: BatchBase = {
      account: 'acme',
      task: 'chat-completion',
      model: 'meta-llama/Llama-3.1-8B-Instruct',
      parameters: { max_tokens: 8 },
    };
    expect(itemJob(base, 'hi', 0)).toMatchObject({
      messages: [{ role: 'user', content: 'hi' }],
      parameters: { max_tokens: 8 },
    });
    expect(itemJob(base, [{ role: 'system', content: 'be brief' }], 1)).toMatchObject({
      messages: [{ role: 'system', content: 'be brief' }],
    });
  });

  it('names the item and the field of an invalid item, and checks what items share', () => {
    const error = (() => {
      try {
        itemJob(EMBED, ['a', 'b'], 7);
      } catch (err) {
        return err;
      }
    })();
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues[0]?.path).toBe('items.7');
    expect(() => itemJob({ ...SIMILARITY }, { source_sentence: 's', sentences: [] }, 3)).toThrow(
      /items\.3\.inputs\.sentences/,
    );
    expect(() => validateBase({ ...EMBED, model: 'not a model id' })).toThrow(/model/);
  });
});
