import { canonicalJson, contentJobId, isSampling, type Job } from '@hfq/shared';
import { describe, expect, it } from 'vitest';

const embed: Job = {
  account: 'acme',
  task: 'feature-extraction',
  model: 'sentence-transformers/all-MiniLM-L6-v2',
  inputs: ['a', 'b'],
  parameters: { normalize: true, truncate: false },
};
const chat = (parameters?: Record<string, unknown>): Job => ({
  account: 'acme',
  task: 'chat-completion',
  model: 'meta-llama/Llama-3.1-8B-Instruct',
  messages: [{ role: 'user', content: 'hi' }],
  ...(parameters ? { parameters } : {}),
});

describe('content identity', () => {
  it('is the same for the same request whatever the key order, and passes BullMQ and hfq id rules', () => {
    const reordered = {
      parameters: { truncate: false, normalize: true },
      inputs: ['a', 'b'],
      model: embed.model,
      task: 'feature-extraction',
      account: 'acme',
    } as Job;
    const id = contentJobId(embed);
    expect(contentJobId(reordered)).toBe(id);
    expect(id).toMatch(/^c1-[0-9a-f]{64}$/);
    expect(id).toMatch(/^(?!\d+$)[A-Za-z0-9_.-]{1,128}$/);
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: undefined }] })).toBe('{"a":[{"d":2}],"b":1}');
  });

  it('changes with every field sent upstream, and the caller key; not with metadata', () => {
    const id = contentJobId(embed);
    const changed: Job[] = [
      { ...embed, account: 'beta' },
      { ...embed, model: 'BAAI/bge-small-en-v1.5' },
      { ...embed, provider: 'together' },
      { ...embed, inputs: ['b', 'a'] },
      { ...embed, parameters: { normalize: false, truncate: false } },
    ];
    for (const job of changed) expect(contentJobId(job)).not.toBe(id);
    expect(contentJobId(embed, { key: 'line-3' })).not.toBe(id);
    expect(contentJobId(embed, { key: 'line-3' })).not.toBe(contentJobId(embed, { key: 'line-4' }));
    expect(contentJobId({ ...embed, metadata: { run: 7 } })).toBe(id);
    // No provider and `auto` are the same request to the router.
    expect(contentJobId({ ...embed, provider: 'auto' })).toBe(id);
  });

  it('treats a generative job with temperature > 0 and no seed as sampling; a seed is part of the identity', () => {
    expect(isSampling(chat({ temperature: 0.7 }))).toBe(true);
    expect(isSampling(chat({ do_sample: true }))).toBe(true);
    expect(isSampling(chat())).toBe(false);
    expect(isSampling(chat({ temperature: 0 }))).toBe(false);
    expect(isSampling(chat({ temperature: 0.7, seed: 1 }))).toBe(false);
    expect(contentJobId(chat({ temperature: 0.7, seed: 1 }))).not.toBe(
      contentJobId(chat({ temperature: 0.7, seed: 2 })),
    );
    expect(isSampling({ ...embed, parameters: { temperature: 1 } })).toBe(false);
    expect(
      isSampling({
        account: 'acme',
        task: 'text-to-image',
        model: 'black-forest-labs/FLUX.1-dev',
        inputs: 'cat',
        parameters: { temperature: 1 },
      }),
    ).toBe(true);
  });
});
