/**
 * What each endpoint computes and how the answer is shaped on the wire: OpenAI-style bodies for
 * the chat, completions, embeddings and images routes; the hf-inference pipeline shapes for
 * `/models/{id}` (as the official client parses them, e.g. text classification nested one level).
 */
import { Buffer } from 'node:buffer';
import type { ServedModel } from './catalog.js';
import { DEFAULT_EMBEDDING_DIMS } from './config.js';
import { fnv1a32, hex8 } from './hash.js';
import { jsonReply, type Reply } from './http/reply.js';
import {
  type ChatMessageLike,
  estimateTokens,
  expectedChatContent,
  expectedChatUsage,
  expectedClassification,
  expectedEmbedding,
  expectedGeneratedText,
  expectedImagePng,
  expectedSimilarity,
  expectedSummary,
  expectedTranslation,
  messageText,
} from './outputs.js';

export type OperationName =
  | 'chat'
  | 'completions'
  | 'embeddings'
  | 'images'
  | 'feature-extraction'
  | 'sentence-similarity'
  | 'text-classification'
  | 'text-generation'
  | 'text-to-image'
  | 'summarization'
  | 'translation';

type Body = Record<string, unknown>;

export interface RespondContext {
  served: ServedModel;
  /** Base URL for images answered by URL. */
  imageBaseUrl: string;
}

export interface Operation {
  /** Mapping tasks a model must have with the provider for this endpoint to serve it. */
  tasks: readonly string[];
  /** Why the body cannot be served, or null. */
  invalid(body: Body): string | null;
  /** Input items: array length, else 1. */
  items(body: Body): number;
  /** Estimated tokens, for limits counted in tokens. */
  tokens(body: Body): number;
  respond(body: Body, context: RespondContext): Reply;
}

const isStringList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((item) => typeof item === 'string');
const isText = (value: unknown): value is string | string[] =>
  typeof value === 'string' || isStringList(value);
const textList = (value: unknown): string[] =>
  typeof value === 'string' ? [value] : isStringList(value) ? value : [];
const createdNow = (): number => Math.floor(Date.now() / 1000);
const dimsOf = (served: ServedModel): number => served.model.dims ?? DEFAULT_EMBEDDING_DIMS;

function messagesOf(body: Body): ChatMessageLike[] {
  const messages = body.messages;
  if (!Array.isArray(messages)) return [];
  return messages.filter(
    (message): message is ChatMessageLike =>
      typeof message === 'object' && message !== null && typeof message.role === 'string',
  );
}

function similarityInputs(body: Body): { source: string; sentences: string[] } | null {
  const inputs = body.inputs;
  if (
    typeof inputs !== 'object' ||
    inputs === null ||
    !('source_sentence' in inputs) ||
    !('sentences' in inputs)
  ) {
    return null;
  }
  const { source_sentence: source, sentences } = inputs;
  return typeof source === 'string' && isStringList(sentences) ? { source, sentences } : null;
}

const textOperation = (
  field: string,
  tasks: readonly string[],
  respond: Operation['respond'],
): Operation => ({
  tasks,
  invalid: (body) => (isText(body[field]) ? null : `\`${field}\` must be a string or an array of strings`),
  items: (body) => Math.max(1, textList(body[field]).length),
  tokens: (body) => estimateTokens(textList(body[field]).join('')),
  respond,
});

const chat: Operation = {
  tasks: ['conversational', 'text-generation', 'image-text-to-text'],
  invalid: (body) =>
    messagesOf(body).length > 0 ? null : '`messages` must be a non-empty array of messages',
  items: () => 1,
  tokens: (body) => {
    const messages = messagesOf(body);
    const cap = body.max_tokens ?? body.max_completion_tokens;
    const completion = typeof cap === 'number' ? cap : expectedChatUsage(messages).completion_tokens;
    return estimateTokens(messages.map((message) => messageText(message.content)).join('')) + completion;
  },
  respond: (body, { served }) => {
    const messages = messagesOf(body);
    const content = expectedChatContent(messages);
    const usage = expectedChatUsage(messages);
    const id = `chatcmpl-${hex8(fnv1a32(JSON.stringify(messages)))}`;
    const base = { id, created: createdNow(), model: served.providerModelId };
    if (body.stream === true) {
      const events = [
        {
          ...base,
          object: 'chat.completion.chunk',
          choices: [{ index: 0, delta: { role: 'assistant', content }, finish_reason: null }],
        },
        {
          ...base,
          object: 'chat.completion.chunk',
          choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
          usage,
        },
      ];
      const text = `${events.map((event) => `data: ${JSON.stringify(event)}\n\n`).join('')}data: [DONE]\n\n`;
      return { status: 200, body: text, contentType: 'text/event-stream' };
    }
    return jsonReply(200, {
      ...base,
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: 'stop' }],
      usage,
    });
  },
};

const completions = textOperation('prompt', ['text-generation', 'conversational'], (body, { served }) => {
  const prompts = textList(body.prompt);
  const completionTokens = prompts.reduce(
    (sum, prompt) => sum + estimateTokens(expectedGeneratedText(prompt)),
    0,
  );
  const promptTokens = estimateTokens(prompts.join(''));
  return jsonReply(200, {
    id: `cmpl-${hex8(fnv1a32(prompts.join('\u0000')))}`,
    object: 'text_completion',
    created: createdNow(),
    model: served.providerModelId,
    choices: prompts.map((prompt, index) => ({
      index,
      text: expectedGeneratedText(prompt),
      finish_reason: 'stop',
      logprobs: null,
      seed: fnv1a32(prompt),
    })),
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    },
  });
});

const embeddings = textOperation(
  'input',
  ['feature-extraction', 'sentence-similarity'],
  (body, { served }) => {
    const inputs = textList(body.input);
    const tokens = estimateTokens(inputs.join(''));
    return jsonReply(200, {
      object: 'list',
      data: inputs.map((text, index) => ({
        object: 'embedding',
        embedding: expectedEmbedding(text, dimsOf(served)),
        index,
      })),
      model: served.providerModelId,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  },
);

const images: Operation = {
  tasks: ['text-to-image'],
  invalid: (body) => (typeof body.prompt === 'string' ? null : '`prompt` must be a string'),
  items: (body) => (typeof body.n === 'number' && body.n > 0 ? Math.floor(body.n) : 1),
  tokens: (body) => estimateTokens(String(body.prompt ?? '')),
  respond: (body, { served, imageBaseUrl }) => {
    const prompt = String(body.prompt);
    const hash = hex8(fnv1a32(prompt));
    const image =
      body.response_format === 'url'
        ? { index: 0, url: `${imageBaseUrl}/${hash}.png` }
        : { index: 0, b64_json: Buffer.from(expectedImagePng(prompt)).toString('base64') };
    return jsonReply(200, {
      id: `img-${hash}`,
      model: served.providerModelId,
      object: 'list',
      data: [image],
    });
  },
};

const featureExtraction = textOperation(
  'inputs',
  ['feature-extraction', 'sentence-similarity'],
  (body, { served }) => {
    const inputs = body.inputs;
    const dims = dimsOf(served);
    // One string gives one vector; an array gives one vector per element, in order.
    return jsonReply(
      200,
      typeof inputs === 'string'
        ? expectedEmbedding(inputs, dims)
        : textList(inputs).map((text) => expectedEmbedding(text, dims)),
    );
  },
);

const sentenceSimilarity: Operation = {
  tasks: ['feature-extraction', 'sentence-similarity'],
  invalid: (body) =>
    similarityInputs(body) ? null : '`inputs` must be { source_sentence: string, sentences: string[] }',
  items: (body) => Math.max(1, similarityInputs(body)?.sentences.length ?? 1),
  tokens: (body) => {
    const inputs = similarityInputs(body);
    return inputs ? estimateTokens(inputs.source + inputs.sentences.join('')) : 0;
  },
  respond: (body, { served }) => {
    const inputs = similarityInputs(body);
    return jsonReply(200, inputs ? expectedSimilarity(inputs.source, inputs.sentences, dimsOf(served)) : []);
  },
};

// The client returns `response[0]`: the labels of the first input.
const textClassification = textOperation('inputs', ['text-classification'], (body) =>
  jsonReply(
    200,
    textList(body.inputs).map((text) => expectedClassification(text)),
  ),
);

const textGeneration: Operation = {
  tasks: ['text-generation'],
  invalid: (body) => (typeof body.inputs === 'string' ? null : '`inputs` must be a string'),
  items: () => 1,
  tokens: (body) => estimateTokens(String(body.inputs ?? '')),
  respond: (body) => jsonReply(200, [{ generated_text: expectedGeneratedText(String(body.inputs)) }]),
};

const textToImage: Operation = {
  tasks: ['text-to-image'],
  invalid: (body) => (typeof body.inputs === 'string' ? null : '`inputs` must be a string'),
  items: () => 1,
  tokens: (body) => estimateTokens(String(body.inputs ?? '')),
  respond: (body) => ({ status: 200, body: expectedImagePng(String(body.inputs)), contentType: 'image/png' }),
};

// The client takes `response[0]` for summarization, and one or many `{ translation_text }`.
const summarization = textOperation('inputs', ['summarization'], (body) =>
  jsonReply(
    200,
    textList(body.inputs).map((text) => ({ summary_text: expectedSummary(text) })),
  ),
);

const translation = textOperation('inputs', ['translation'], (body) =>
  jsonReply(
    200,
    textList(body.inputs).map((text) => ({ translation_text: expectedTranslation(text) })),
  ),
);

export const OPERATIONS: Record<OperationName, Operation> = {
  chat,
  completions,
  embeddings,
  images,
  'feature-extraction': featureExtraction,
  'sentence-similarity': sentenceSimilarity,
  'text-classification': textClassification,
  'text-generation': textGeneration,
  'text-to-image': textToImage,
  summarization,
  translation,
};

/** `/models/{id}` on hf-inference: the operation follows the model's task (and the body's shape). */
export function hfInferenceOperation(task: string, body: Body): OperationName | null {
  if (task === 'feature-extraction' || task === 'sentence-similarity') {
    return similarityInputs(body) ? 'sentence-similarity' : 'feature-extraction';
  }
  if (
    task === 'text-classification' ||
    task === 'text-generation' ||
    task === 'text-to-image' ||
    task === 'summarization' ||
    task === 'translation'
  )
    return task;
  return null;
}
