import { luaSource } from './redis-script.js';

/**
 * What a 429 means: congestion (the domain's own rate caused it, so the rate must come down) or
 * noise (a busy provider, a stray refusal: the request is retried, nothing shared changes). The
 * rule runs atomically in Redis (`lua/congestion-detector.lua`, composed in front of the two
 * scripts that need it); this module names it and loads it. README, "What a 429 means", tells it
 * in words:
 *
 * - Every domain counts, per quarter window (by send time), the requests it admitted and the 429s
 *   they drew. A 429 that states a wait (Retry-After, reset headers, a quota reset) always pauses
 *   the domain for that wait; every 429, stated or not, is then judged by the rule below.
 * - Congestion when the 429s of the last two windows are more than three standard deviations
 *   above what the domain's noise level explains (a learned share; 0.2% before any was measured),
 *   or when they form a wall (since the first 429 in the window the upstream let nothing through,
 *   a run that the noise level makes unlikely). Otherwise noise: the job retries after a short
 *   jittered delay, counted toward its `max429s`, and no other job waits.
 * - A first blip (congestion at a share under 10%, none in the last minute) dips the rate without
 *   a test and gives it back two windows after the settle span.
 * - Any other congestion verdict cuts the rate once per episode: to what the upstream let through
 *   in the window before the 429 (a wall, a probe that went past the edge, or 429s that stated a
 *   wait: decided at once), or, for a share that might still be noise, by twice the share (within
 *   40–90% of the rate), put under test. The test waits one window for the upstream's window to
 *   drain at the new rate, then measures: a share that fell is congestion (the cut stays; a small
 *   share that fell back is given back two windows later, since noise falls back too), one that
 *   rose means the limit fell again (cut again), as does one that went up beyond chance under a
 *   noise level learned before (the cut was not deep enough), otherwise the likelihood ratio of the count
 *   after the cut under noise (the share stays) and congestion (the upstream lets through per
 *   window what it let through before) decides; noise, or no decision within eight windows,
 *   gives the rate back and adds the counts to the domain's noise evidence (so the threshold
 *   scales with it).
 * - Forgetting: the noise evidence halves every 30 windows, is capped at 80 sends and sets the
 *   level only from 40 sends on, so a level is out of force within one half-life of its last
 *   measure. A share well above the level at a steady or falling admitted rate is tested again;
 *   a share far below it over the same four windows (three standard deviations: the busy spell
 *   is over), a wall (a run of refusals the level gives less than `WALL_P`) and a test that
 *   confirms congestion drop the evidence below the minimum.
 * - Fast recovery: a rate that ran five windows without a cut held; after a cut below it, the rate
 *   probes back after three quiet windows (six after a failed probe, never giving up; a probe
 *   answered with a stated wait doubles the quiet time each time in a row), a first step 15% of
 *   the way and then doubling steps, each once the rate in force was really sent at for a window;
 *   a probe that finds the edge goes back to where its climb started. While a noise level is in
 *   force, a climb's 429s since its last raise are compared with the share before the climb
 *   (a one-sided Fisher exact test): noise does not depend on the rate, so a share that rose with
 *   the climb is the edge, and the level is put in question. Without such a rate, the
 *   target is the ceiling: probes start after the quiet time with one additive step, then
 *   doubling steps; the same past a rate that held, toward the ceiling (a climb that reaches the
 *   rate that held starts over there with one step).
 * - Low rates: the primary window keeps at least a tenth of the spacing between sends free (at 3
 *   per second, 33 ms: more than the 1.5% margin, less than the jitter of two sends' trips).
 */

/** The detector's verdict on one 429 (see the module comment). */
export type Verdict = 'noise' | 'congestion';

const DETECTOR = luaSource('congestion-detector.lua');

/** A constant of the detector's `DET` table, read from the script itself (one source of truth). */
function detectorConstant(name: string): number {
  const match = new RegExp(`^\\s*${name}\\s*=\\s*([\\d.]+)\\s*,`, 'm').exec(DETECTOR);
  if (!match?.[1]) throw new Error(`congestion-detector.lua has no constant ${name}`);
  return Number(match[1]);
}

/** Noise share assumed before any was measured, and once what was measured is forgotten. */
export const NOISE_PRIOR = detectorConstant('PRIOR');
/** Noise evidence halves every this many primary windows without a new measure. */
export const NOISE_HALF_LIFE_WINDOWS = detectorConstant('NOISE_HALF_LIFE_WINDOWS');
/** Sends of evidence from which a measured noise level is in force. */
export const NOISE_MIN_SENDS = detectorConstant('NOISE_MIN_SENDS');
/** Most sends of evidence kept (twice the minimum: a level is forgotten within one half-life). */
export const NOISE_CAP_SENDS = detectorConstant('NOISE_CAP_SENDS');

/** What the detector learned of a domain's noise, as of a moment (see `learnedNoise`). */
export interface NoiseLevel {
  /** The measured 429 share (429s ÷ sends of the evidence). */
  share: number;
  /** Sends of evidence behind it, decayed to now (the 429s are `share` of them). */
  evidenceSends: number;
  /** Time since it was last measured (ms). */
  ageMs: number;
  /** Its half-life (ms): 30 primary windows. */
  halfLifeMs: number;
  /** The evidence still reaches the minimum: the detector judges 429s against this share (else the prior). */
  inForce: boolean;
}

/**
 * The noise level the detector holds at `nowMs` (Redis time), from the domain state's fields
 * `noiseT`, `noiseA`, `noiseAt`, `noiseHl` (see lua/congestion-detector.lua, det_noise_at): the
 * evidence decays with its half-life and sets the level only from `NOISE_MIN_SENDS` sends on.
 * Undefined when no noise was ever measured.
 */
export function learnedNoise(
  fields: {
    t: number | undefined;
    a: number | undefined;
    at: number | undefined;
    halfLifeMs: number | undefined;
  },
  nowMs: number,
): NoiseLevel | undefined {
  const { t, a, at, halfLifeMs } = fields;
  if (t === undefined || a === undefined || at === undefined || halfLifeMs === undefined || a <= 0)
    return undefined;
  const ageMs = Math.max(0, nowMs - at);
  const evidenceSends = a * 2 ** (-ageMs / halfLifeMs);
  return {
    share: Math.max(NOISE_PRIOR, t / a),
    evidenceSends,
    ageMs,
    halfLifeMs,
    inForce: evidenceSends >= NOISE_MIN_SENDS,
  };
}

/**
 * A script with the detector composed in front of it (both run as one atomic script); `before`
 * goes in front of the detector and `prelude` between it and the script (parts that return early).
 */
export function withDetector(scriptFile: string, before = '', prelude = ''): string {
  return `${before}${DETECTOR}\n${prelude}${prelude ? '\n' : ''}${luaSource(scriptFile)}`;
}

/** Longest jittered delay before a job retries a 429 that named no wait (noise or congestion). */
export const NOISE_RETRY_MAX_MS = 250;
/** Shortest such delay. */
export const NOISE_RETRY_MIN_MS = 25;

/** The delay before a job retries a 429 that named no wait: short, with full jitter. */
export function noiseRetryDelayMs(random: () => number): number {
  return Math.round(NOISE_RETRY_MIN_MS + random() * (NOISE_RETRY_MAX_MS - NOISE_RETRY_MIN_MS));
}
