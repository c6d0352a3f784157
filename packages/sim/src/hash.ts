/** Small, stable hashes and a seeded PRNG: the only sources of "randomness" in the simulator. */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';

/** FNV-1a over the UTF-8 bytes of `text`: a stable 32-bit hash that seeds the deterministic outputs. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A short one-way name for a secret, so stats never hold raw tokens. */
export function secretId(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 12);
}

export function hex8(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}
