/**
 * The deterministic outputs. Every value is a pure function of the request input (a hash of
 * the text), so a test can compute exactly what the simulator will answer:
 *
 * - feature extraction: `dims` floats from a PRNG seeded with the text's hash, scaled to unit length;
 * - sentence similarity: dot products of those unit vectors;
 * - chat: `echo: <text of the last user message>`; usage counts ceil(characters / 4) tokens;
 * - text classification: POSITIVE or NEGATIVE (from the hash's low bit), top score in [0.5, 1);
 * - text generation: ` [sim <8 hex digits of the prompt's hash>]`;
 * - text to image: an 8×8 PNG of one colour, the RGB being the low three bytes of the prompt's hash.
 */
import { DEFAULT_EMBEDDING_DIMS } from './config.js';
import { fnv1a32, hex8, mulberry32 } from './hash.js';
import { solidPng } from './png.js';

export const IMAGE_SIZE = 8;

/** A chat message as far as the simulator reads it. */
export interface ChatMessageLike {
  role: string;
  content?: unknown;
}

export interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ClassificationLabel {
  label: 'POSITIVE' | 'NEGATIVE';
  score: number;
}

/** Token estimate used everywhere in the simulator: ceil(characters / 4). */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** The embedding of `text`: `dims` floats of unit L2 norm. */
export function expectedEmbedding(text: string, dims: number = DEFAULT_EMBEDDING_DIMS): number[] {
  const random = mulberry32(fnv1a32(text));
  const raw = Array.from({ length: dims }, () => random() * 2 - 1);
  const norm = Math.sqrt(raw.reduce((sum, value) => sum + value * value, 0)) || 1;
  return raw.map((value) => value / norm);
}

/** Sentence similarity: the cosine of `source` with each sentence. */
export function expectedSimilarity(
  source: string,
  sentences: readonly string[],
  dims: number = DEFAULT_EMBEDDING_DIMS,
): number[] {
  const anchor = expectedEmbedding(source, dims);
  return sentences.map((sentence) =>
    expectedEmbedding(sentence, dims).reduce((sum, value, index) => sum + value * (anchor[index] ?? 0), 0),
  );
}

/** The text of a message's content: a string, or the text parts of a content array joined by newlines. */
export function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const texts: string[] = [];
  for (const part of content) {
    if (typeof part === 'object' && part !== null && 'text' in part && typeof part.text === 'string') {
      texts.push(part.text);
    }
  }
  return texts.join('\n');
}

/** The assistant's reply: `echo: ` and the last user message (or the last message if none is a user's). */
export function expectedChatContent(messages: readonly ChatMessageLike[]): string {
  const lastUser = [...messages].reverse().find((message) => message.role === 'user') ?? messages.at(-1);
  return `echo: ${messageText(lastUser?.content)}`;
}

/** The chat answer's `usage`. */
export function expectedChatUsage(messages: readonly ChatMessageLike[]): ChatUsage {
  const prompt = estimateTokens(messages.map((message) => messageText(message.content)).join(''));
  const completion = estimateTokens(expectedChatContent(messages));
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** Both labels, highest score first (what the client returns from `textClassification`). */
export function expectedClassification(text: string): ClassificationLabel[] {
  const hash = fnv1a32(text);
  const top = 0.5 + (hash % 50_000) / 100_000;
  const positive = (hash & 1) === 0;
  return [
    { label: positive ? 'POSITIVE' : 'NEGATIVE', score: top },
    { label: positive ? 'NEGATIVE' : 'POSITIVE', score: 1 - top },
  ];
}

/** The completion text for `prompt` (the prompt itself is not repeated). */
export function expectedGeneratedText(prompt: string): string {
  return ` [sim ${hex8(fnv1a32(prompt))}]`;
}

/** The summary of `text`: its first words and a tag that is a pure function of the whole. */
export function expectedSummary(text: string): string {
  return `${text.split(/\s+/).slice(0, 8).join(' ')} [sim summary ${hex8(fnv1a32(text))}]`;
}

/** The translation of `text`: a tag that is a pure function of the text (the words are not translated). */
export function expectedTranslation(text: string): string {
  return `[sim translation ${hex8(fnv1a32(text))}] ${text}`;
}

/** The colour of the image for `prompt`. */
export function imageColour(prompt: string): [number, number, number] {
  return colourOfHash(fnv1a32(prompt));
}

export function colourOfHash(hash: number): [number, number, number] {
  return [(hash >>> 16) & 0xff, (hash >>> 8) & 0xff, hash & 0xff];
}

/** The PNG bytes for `prompt`. */
export function expectedImagePng(prompt: string): Uint8Array {
  return new Uint8Array(solidPng(imageColour(prompt), IMAGE_SIZE));
}
