/** The official client, unmodified, against the simulator: every task hfq uses, routed and direct. */
import { Buffer } from 'node:buffer';
import { InferenceClientHubApiError, InferenceClientProviderApiError } from '@huggingface/inference';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  expectedChatContent,
  expectedChatUsage,
  expectedClassification,
  expectedEmbedding,
  expectedGeneratedText,
  expectedImagePng,
  expectedSimilarity,
  type Sim,
  startSim,
} from '../src/index.js';
import { type CapturedResponse, simClient } from './helpers/sim-fetch.js';

const LLAMA = 'meta-llama/Llama-3.1-8B-Instruct';
const MINILM = 'sentence-transformers/all-MiniLM-L6-v2';
const BGE = 'BAAI/bge-small-en-v1.5';
const SST2 = 'distilbert/distilbert-base-uncased-finetuned-sst-2-english';
const FLUX = 'black-forest-labs/FLUX.1-schnell';
const messages = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'What is a rate limit?' },
];

let sim: Sim;
beforeAll(async () => {
  sim = await startSim();
});
afterAll(async () => {
  await sim.close();
});

async function pngBytes(blob: Blob): Promise<Uint8Array> {
  return new Uint8Array(await blob.arrayBuffer());
}

describe('through the router (hf_ token)', () => {
  test('chat via the auto-router picks the first live provider and says which', async () => {
    const seen: CapturedResponse[] = [];
    const client = simClient(sim, 'hf_router_chat', { seen });
    const output = await client.chatCompletion({ model: LLAMA, messages });
    expect(output.choices[0]?.message.content).toBe(expectedChatContent(messages));
    expect(output.usage).toEqual(expectedChatUsage(messages));
    expect(output.model).toBe('meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo');
    const response = seen.at(-1);
    expect(response?.url).toBe(`${sim.routerUrl}/v1/chat/completions`);
    expect(response?.headers.get('x-inference-provider')).toBe('together');
    expect(response?.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('chat with an explicit provider uses its provider model id', async () => {
    const seen: CapturedResponse[] = [];
    const client = simClient(sim, 'hf_router_chat', { seen });
    const output = await client.chatCompletion({ model: LLAMA, messages, provider: 'cerebras' });
    expect(output.choices[0]?.message.content).toBe('echo: What is a rate limit?');
    expect(output.model).toBe('llama3.1-8b');
    expect(seen.map((response) => response.url)).toContain(`${sim.routerUrl}/cerebras/v1/chat/completions`);
    expect(seen.at(-1)?.headers.get('x-inference-provider')).toBe('cerebras');
  });

  test('feature extraction on hf-inference: one text gives a vector, an array gives vectors in order', async () => {
    const client = simClient(sim, 'hf_router_fe');
    const single = await client.featureExtraction({
      model: MINILM,
      inputs: 'alpha',
      provider: 'hf-inference',
    });
    expect(single).toEqual(expectedEmbedding('alpha'));
    const batch = await client.featureExtraction({
      model: MINILM,
      inputs: ['alpha', 'beta', 'gamma'],
      provider: 'hf-inference',
    });
    expect(batch).toEqual(['alpha', 'beta', 'gamma'].map((text) => expectedEmbedding(text)));
  });

  test('feature extraction on together always answers a list of vectors', async () => {
    const client = simClient(sim, 'hf_router_fe');
    expect(await client.featureExtraction({ model: BGE, inputs: 'alpha', provider: 'together' })).toEqual([
      expectedEmbedding('alpha'),
    ]);
    const batch = await client.featureExtraction({ model: BGE, inputs: ['x', 'y'], provider: 'together' });
    expect(batch).toEqual([expectedEmbedding('x'), expectedEmbedding('y')]);
  });

  test('embedding length follows the model', async () => {
    sim.setModel('acme/embedder-16', {
      providers: { 'hf-inference': { task: 'feature-extraction' } },
      dims: 16,
    });
    const client = simClient(sim, 'hf_router_fe');
    const vector = await client.featureExtraction({
      model: 'acme/embedder-16',
      inputs: 'z',
      provider: 'hf-inference',
    });
    expect(vector).toEqual(expectedEmbedding('z', 16));
    expect(Math.hypot(...(vector as number[]))).toBeCloseTo(1, 12);
  });

  test('sentence similarity on hf-inference', async () => {
    const client = simClient(sim, 'hf_router_fe');
    const inputs = { source_sentence: 'cat', sentences: ['cat', 'dog'] };
    const scores = await client.sentenceSimilarity({ model: MINILM, inputs, provider: 'hf-inference' });
    expect(scores).toEqual(expectedSimilarity('cat', ['cat', 'dog']));
    expect(scores[0]).toBeCloseTo(1, 12);
  });

  test('text classification', async () => {
    const client = simClient(sim, 'hf_router_tc');
    for (const text of ['I love it', 'I hate it', '']) {
      const labels = await client.textClassification({ model: SST2, inputs: text, provider: 'hf-inference' });
      expect(labels).toEqual(expectedClassification(text));
    }
  });

  test('text generation on together and hf-inference', async () => {
    const client = simClient(sim, 'hf_router_tg');
    const viaTogether = await client.textGeneration({
      model: 'meta-llama/Llama-3.1-8B',
      inputs: 'Once',
      provider: 'together',
    });
    expect(viaTogether.generated_text).toBe(expectedGeneratedText('Once'));
    const viaHf = await client.textGeneration({
      model: 'meta-llama/Llama-3.1-8B',
      inputs: 'Upon',
      provider: 'hf-inference',
      parameters: { max_new_tokens: 8 },
    });
    expect(viaHf.generated_text).toBe(expectedGeneratedText('Upon'));
  });

  test('the legacy hf-inference text-generation route answers [{ generated_text }]', async () => {
    const response = await fetch(`${sim.routerUrl}/hf-inference/models/meta-llama/Llama-3.1-8B`, {
      method: 'POST',
      headers: { authorization: 'Bearer hf_router_tg', 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: 'Once' }),
    });
    expect(await response.json()).toEqual([{ generated_text: expectedGeneratedText('Once') }]);
    expect(response.headers.get('x-inference-provider')).toBe('hf-inference');
  });

  test('text to image: image bytes from hf-inference, base64 JSON from together', async () => {
    const client = simClient(sim, 'hf_router_img');
    const blob = { outputType: 'blob' } as const;
    const fromHf = await client.textToImage(
      { model: FLUX, inputs: 'a red fox', provider: 'hf-inference' },
      blob,
    );
    expect(await pngBytes(fromHf)).toEqual(expectedImagePng('a red fox'));
    const fromTogether = await client.textToImage(
      { model: FLUX, inputs: 'a red fox', provider: 'together' },
      blob,
    );
    expect(await pngBytes(fromTogether)).toEqual(expectedImagePng('a red fox'));
    expect(Buffer.from(expectedImagePng('x')).subarray(1, 4).toString('ascii')).toBe('PNG');
  });

  test('together can answer an image by URL that the simulator serves', async () => {
    const client = simClient(sim, 'hf_router_img');
    const url = await client.textToImage(
      { model: FLUX, inputs: 'blue', provider: 'together' },
      { outputType: 'url' },
    );
    const response = await fetch(url);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(expectedImagePng('blue'));
  });
});

describe('direct mode (provider key)', () => {
  test('together and cerebras answer a non-hf key on their own APIs', async () => {
    const seen: CapturedResponse[] = [];
    const together = simClient(sim, 'tgp_direct_key', { seen });
    const chat = await together.chatCompletion({ model: LLAMA, messages, provider: 'together' });
    expect(chat.choices[0]?.message.content).toBe(expectedChatContent(messages));
    const vectors = await together.featureExtraction({ model: BGE, inputs: ['q'], provider: 'together' });
    expect(vectors).toEqual([expectedEmbedding('q')]);
    const cerebras = simClient(sim, 'csk_direct_key', { seen });
    const fast = await cerebras.chatCompletion({ model: LLAMA, messages, provider: 'cerebras' });
    expect(fast.model).toBe('llama3.1-8b');

    const urls = seen.map((response) => response.url);
    expect(urls).toContain(`${sim.providerUrls.together}/v1/chat/completions`);
    expect(urls).toContain(`${sim.providerUrls.together}/v1/embeddings`);
    expect(urls).toContain(`${sim.providerUrls.cerebras}/v1/chat/completions`);
    expect(
      sim.received({ route: 'provider', authorizationKind: 'provider-key', status: 200 }),
    ).toBeGreaterThanOrEqual(3);
    expect(sim.received({ route: 'provider', authorizationKind: 'hf' })).toBe(0);
  });

  test('the auto-router refuses a provider key client-side', async () => {
    const client = simClient(sim, 'tgp_direct_key');
    await expect(client.chatCompletion({ model: LLAMA, messages })).rejects.toThrow(/auto-router/);
  });
});

describe('catalog errors', () => {
  test('an unknown model fails the Hub lookup with the Hub wording', async () => {
    const client = simClient(sim, 'hf_router_err');
    const error = await client
      .featureExtraction({ model: 'nobody/nothing', inputs: 'x', provider: 'together' })
      .catch((e) => e);
    expect(error).toBeInstanceOf(InferenceClientHubApiError);
    expect(error.httpResponse.status).toBe(404);
    expect(error.message).toContain('Repository not found');
  });

  test('a provider that does not serve the model answers 400', async () => {
    const response = await fetch(`${sim.routerUrl}/together/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer hf_router_err', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'nobody/nothing', messages }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'Model not supported by provider together' });
  });

  test('the auto-router with no provider for the model answers 400', async () => {
    const client = simClient(sim, 'hf_router_err');
    const error = await client.chatCompletion({ model: MINILM, messages }).catch((e) => e);
    expect(error).toBeInstanceOf(InferenceClientProviderApiError);
    expect(error.httpResponse.status).toBe(400);
    expect(JSON.stringify(error.httpResponse.body)).toContain(
      `The requested model '${MINILM}' is not supported by any provider you have enabled.`,
    );
  });

  test('the Hub can answer the mapping in its array form', async () => {
    sim.configure({ hub: { mappingForm: 'array' } });
    try {
      const response = await fetch(`${sim.hubUrl}/api/models/${LLAMA}?expand[]=inferenceProviderMapping`);
      const body = await response.json();
      expect(body.inferenceProviderMapping).toEqual([
        {
          provider: 'together',
          hfModelId: LLAMA,
          providerId: 'meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo',
          status: 'live',
          task: 'conversational',
        },
        {
          provider: 'cerebras',
          hfModelId: LLAMA,
          providerId: 'llama3.1-8b',
          status: 'live',
          task: 'conversational',
        },
      ]);
      expect(response.headers.get('ratelimit')).toMatch(/^"api";r=\d+;t=\d+$/);
      expect(response.headers.get('ratelimit-policy')).toBe('"fixed window";"api";q=1000;w=300');
    } finally {
      sim.configure({ hub: { mappingForm: 'object' } });
    }
  });
});
