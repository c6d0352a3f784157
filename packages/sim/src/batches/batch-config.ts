/**
 * The providers' asynchronous batch API (`/v1/files`, `/v1/batches`): how it answers and how
 * fast it works. Durations are in the provider's time; `timeScale` makes the simulator's batch
 * clock run that many times faster, so a 24-hour window and minutes of turnaround fit in a test.
 */
import type { DirectProviderName } from '../providers.js';

/** How long a batch takes from `in_progress` to its last line. */
export type BatchTurnaround =
  | { kind: 'fixed'; ms: number }
  /** Uniform in minMs..maxMs, drawn per batch from the seeded PRNG. */
  | { kind: 'range'; minMs: number; maxMs: number }
  /** Never finishes a line: the batch expires at the end of its completion window. */
  | { kind: 'stuck' };

/**
 * The answer shape: `openai` (lower-case statuses, `request_counts`, create answers the batch)
 * or `together` (upper-case statuses, `progress`, create answers `{ job }`).
 */
export type BatchApiStyle = 'openai' | 'together';

export interface BatchApiConfig {
  /** Shape of each direct provider's batch API. @defaultValue together: `'together'`, cerebras: `'openai'` */
  style: Record<DirectProviderName, BatchApiStyle>;
  /** @defaultValue `{ kind: 'range', minMs: 180000, maxMs: 480000 }` (3 to 8 minutes) */
  turnaround: BatchTurnaround;
  /** Time a new batch spends `validating` before its lines start. @defaultValue `0` */
  validatingMs: number;
  /** The completion window: an unfinished batch expires at its end. @defaultValue 24 h */
  completionWindowMs: number;
  /** Share of lines that fail (a 500 in the error file), drawn per line. @defaultValue `0` */
  failureShare: number;
  /** A line's price as a share of the same request's real-time price. @defaultValue `0.5` */
  priceShare: number;
  /** Batch time runs this many times faster than the simulator's clock. @defaultValue `1` */
  timeScale: number;
  /** Most requests in one input file; a larger one is refused at create. @defaultValue `50000` */
  maxRequestsPerFile: number;
  /** Largest input file, in bytes; a larger upload is refused with 413. @defaultValue 200 MB */
  maxFileBytes: number;
  /**
   * Hold a successful answer back this long (wall-clock ms) after the work is done: the file
   * stored, the batch created, the file read. Crash tests kill the caller in that window.
   * @defaultValue all `0`
   */
  answerDelayMs: BatchAnswerDelays;
}

export interface BatchAnswerDelays {
  upload: number;
  create: number;
  download: number;
}

export const DAY_MS = 24 * 60 * 60 * 1000;

export function defaultBatchApiConfig(): BatchApiConfig {
  return {
    style: { together: 'together', cerebras: 'openai' },
    turnaround: { kind: 'range', minMs: 180_000, maxMs: 480_000 },
    validatingMs: 0,
    completionWindowMs: DAY_MS,
    failureShare: 0,
    priceShare: 0.5,
    timeScale: 1,
    maxRequestsPerFile: 50_000,
    maxFileBytes: 200 * 1000 * 1000,
    answerDelayMs: { upload: 0, create: 0, download: 0 },
  };
}

/** A partial batch API config, merged field by field (`style` per provider). */
export type BatchApiPatch = Partial<Omit<BatchApiConfig, 'style' | 'answerDelayMs'>> & {
  style?: Partial<Record<DirectProviderName, BatchApiStyle>>;
  answerDelayMs?: Partial<BatchAnswerDelays>;
};

export function mergeBatchApiConfig(config: BatchApiConfig, patch: BatchApiPatch): BatchApiConfig {
  const { style, answerDelayMs, ...rest } = patch;
  return {
    ...config,
    ...rest,
    style: { ...config.style, ...style },
    answerDelayMs: { ...config.answerDelayMs, ...answerDelayMs },
  };
}
