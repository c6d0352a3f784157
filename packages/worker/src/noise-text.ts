import type { AccountStatus } from './admin.js';
import { durationText } from './cockpit/forecast.js';

/**
 * The learned noise level beside the learned rate (`hfq status`, the cockpit): its share, how old
 * its last measure is, and whether it has been forgotten (its evidence decayed below the minimum:
 * 429s are judged against the prior again). README, "What a 429 means".
 */
export function noiseText(noise: AccountStatus['learnedNoise']): string {
  if (!noise) return 'none measured';
  const share = `${(noise.share * 100).toFixed(1)}%`;
  const age = `${durationText(noise.ageMs)} ago`;
  return noise.inForce
    ? `${share}, ${age} (${Math.round(noise.evidenceSends)} sends)`
    : `${share}, ${age}, forgotten`;
}
