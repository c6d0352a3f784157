import { closestName } from './did-you-mean.js';

/**
 * The inference providers the official client knows (`INFERENCE_PROVIDERS` of
 * `@huggingface/inference` 4.13.30; a test holds this list to the installed client). Used only
 * to catch a misspelt provider name in the config: a name close to one of these but not one of
 * them is an error; a name far from all of them is taken as a provider newer than this list.
 */
export const KNOWN_PROVIDERS = [
  'baseten',
  'cerebras',
  'cohere',
  'deepinfra',
  'fal-ai',
  'featherless-ai',
  'fireworks-ai',
  'groq',
  'hf-inference',
  'novita',
  'nscale',
  'openai',
  'ovhcloud',
  'publicai',
  'replicate',
  'scaleway',
  'together',
  'wavespeed',
  'zai-org',
] as const;

/** The known provider a misspelt name stands for (`togther` → `together`), else undefined. */
export function misspeltProvider(name: string): string | undefined {
  if ((KNOWN_PROVIDERS as readonly string[]).includes(name)) return undefined;
  return closestName(name, KNOWN_PROVIDERS);
}
