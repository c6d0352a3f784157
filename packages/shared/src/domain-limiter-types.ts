import type { RateWindow } from './account-schema.js';
import type { NoiseLevel, Verdict } from './congestion-detector.js';
import type { RateChange } from './rate-change.js';

/**
 * The limiter's options, inputs and answers (`domain-limiter.ts` holds the limiter itself): what a
 * domain is, what a permit request asks and gets, what a 429 did, what an operator reads and sets.
 */

export interface LimiterOptions {
  /** Extra share of each window kept free for the time between admission and arrival upstream. @defaultValue 0.015 */
  marginRatio?: number;
  /** Longest wait to hold a reserved slot for inside a worker; longer waits return `wait`. @defaultValue 10000 */
  maxReserveMs?: number;
  /** Additive increase per clean window, as a share of the ceiling. @defaultValue 0.02 */
  increaseRatio?: number;
  /** Time after a cut before the learned rate may rise again. @defaultValue 10000 */
  quietMs?: number;
  /** Decrease for a wall of 429s in a window already full of history (a limit that fell). @defaultValue 0.7 */
  beta?: number;
  /** Randomness for jitter. @defaultValue Math.random */
  random?: () => number;
  /** Append every admission's Redis time to `<domain>:audit` (diagnostics and tests). @defaultValue false */
  audit?: boolean;
  /** Most entries the audit list keeps (the oldest are trimmed). @defaultValue 100000 */
  auditMax?: number;
  /** The audit list expires this long after its last write. @defaultValue 86400000 (1 day) */
  auditTtlMs?: number;
}

/** The limiter's options inside hfq: the tuning, and where its rate changes are reported. */
export interface DomainLimiterOptions extends LimiterOptions {
  /**
   * Called for each change of a domain's learned rate, by the process whose permit or 429 made it
   * (each change is reported once, to one process). @defaultValue none
   */
  onRateChange?: (change: RateChange) => void;
}

export interface DomainRef {
  /** Non-secret id of the domain (a hash of the credential, see `credentialId`). */
  id: string;
  windows: readonly RateWindow[];
}

export interface AcquireInput {
  domain: DomainRef;
  /** Credit gate of the account or organisation (see `credit-state.ts`); checked before admission. */
  gateKey: string;
  /** Spend ledger hash and the field and budget to compare, when a budget applies. */
  ledgerKey: string;
  ledgerField?: string;
  budgetUsd?: number;
  /** Caller's clock, for the credit gate. */
  appNowMs: number;
  /** Estimated model tokens, for token windows. @defaultValue 1 */
  tokens?: number;
  signal?: AbortSignal;
  /** Longest wait to hold a slot for in this call (a spill that has somewhere else to go). @defaultValue `maxReserveMs` */
  maxWaitMs?: number;
}

export type AcquireResult =
  | { kind: 'admitted'; sentAt: number; uid: string; primaryLimit: number; waitedMs: number }
  | { kind: 'wait'; waitMs: number; waitedMs: number }
  | { kind: 'gate'; reason: string; untilMs: number }
  | { kind: 'budget'; spentUsd: number };

export interface ThrottleOutcome {
  /** What the 429 meant (see `congestion-detector.ts`). */
  verdict: Verdict;
  /** How long the domain is paused for a stated wait (0 when none was stated). */
  pauseMs: number;
  episodes: number;
  /** The learned rate after this 429. */
  rate: number;
  /** This 429 started a congestion episode (the rate was cut). */
  newEpisode: boolean;
  /** The noise level the 429 was judged against (the prior, 0.2%, when none is in force). */
  noiseLevel: number;
  /** Sends of evidence behind that level now (0: the prior). */
  noiseEvidenceSends: number;
}

export interface DomainState {
  rate: number | undefined;
  override: number | undefined;
  /** When an override set with `forMs` lapses (ms since the epoch); undefined when it is permanent or absent. */
  overrideUntilMs: number | undefined;
  pausedUntil: number;
  /** How much longer the domain waits for a stated wait, by Redis's clock (0 when it does not). */
  pausedForMs: number;
  episodes: number;
  /**
   * The 429 share the detector holds as this domain's noise level now: undefined while no level
   * is in force (none measured, or forgotten: see `noise`).
   */
  noiseShare: number | undefined;
  /** What the detector learned of the noise, in force or not (undefined when it never measured any). */
  noise: NoiseLevel | undefined;
  recent429s: number;
}

/** What `setOverride` did to the domain's learned state. */
export interface OverrideOutcome {
  /** The learned rate before (undefined: none was learned, the configured limit was in force). */
  previousRate: number | undefined;
  /** The override before, if any. */
  previousOverride: number | undefined;
  /** A stated wait (Retry-After) that was running and still holds: until this Redis time (ms); 0 when none. */
  keptPausedUntil: number;
  /** The learned rate, the cut under test, the probes and the noise evidence were cleared. */
  cleared: readonly string[];
}

/** Options of `setOverride` (an object, so later options such as an expiry can join it). */
export interface SetOverrideOptions {
  /** The new limit of the primary window; undefined clears the override. */
  limit: number | undefined;
  /** The override lapses by itself after this long (the configured limit is back); never, unset. */
  forMs?: number | undefined;
}

/** A domain's primary window: its first request window (the learned rate and overrides apply to it). */
export function primaryWindow(
  windows: readonly RateWindow[],
): { max: number; durationMs: number } | undefined {
  for (const w of windows) if ('max' in w) return w;
  return undefined;
}

/** A domain with only token windows is paced by them alone: its request window never binds. */
export function primaryOf(windows: readonly RateWindow[]): { max: number; durationMs: number } {
  return primaryWindow(windows) ?? { max: 1_000_000, durationMs: 1_000 };
}
