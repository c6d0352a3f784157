/**
 * Files and batches of the simulated batch API, per provider key. A batch's state is a function
 * of time: each call looks at the batch clock ((now − created) × timeScale) and moves the lines
 * whose moment has come into the output or error file, charging each success `priceShare` of its
 * real-time price to the key's credits. So a batch is charged when it is next looked at (any batch
 * API request, or stats), not on a timer. Terminal batches are frozen.
 */
import { randomUUID } from 'node:crypto';
import type { CreditConfig, DirectProviderName, SimConfig } from '../config.js';
import type { CreditLedger } from '../credits.js';
import { requestCostUsd } from '../credits.js';
import { PROVIDER_PAYMENT_REQUIRED } from '../texts.js';
import type { BatchApiStyle, BatchTurnaround } from './batch-config.js';
import type { InputLine, LineOutcome, PlannedLine } from './batch-lines.js';
import { planLines } from './batch-lines.js';

export type BatchStatus =
  | 'validating'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'expired'
  | 'cancelled'
  | 'failed';

const TERMINAL: ReadonlySet<BatchStatus> = new Set(['completed', 'expired', 'cancelled', 'failed']);

/** Who owns a file or batch: the key's short hash and label (never the key), and its credits. */
export interface BatchOwner {
  id: string;
  label: string;
  /** Ledger account the lines are charged to, and its credit config (none: unlimited). */
  account: string;
  /** The ledger's name for it in stats (`token:<label>`). */
  ledgerLabel: string;
  credits: CreditConfig | undefined;
}

export interface SimFile {
  id: string;
  ownerId: string;
  provider: DirectProviderName;
  purpose: string;
  filename: string;
  bytes: number;
  createdAtSec: number;
  /** The input's text; output and error files are read from their batch. */
  text?: string;
  batchId?: string;
  kind: 'input' | 'output' | 'error';
}

export interface FinishedLine {
  customId: string;
  requestId: string;
  outcome: LineOutcome;
}

export interface SimBatch {
  id: string;
  owner: BatchOwner;
  provider: DirectProviderName;
  style: BatchApiStyle;
  endpoint: string;
  inputFile: SimFile;
  metadata: Record<string, string> | null;
  /** Simulator clock at creation, and the scale captured then. */
  createdAt: number;
  timeScale: number;
  createdAtSec: number;
  validatingMs: number;
  /** Batch time at which it completes (validating + the drawn turnaround; infinite when stuck). */
  completesAtMs: number;
  windowMs: number;
  lines: PlannedLine[];
  /** Lines finished so far, in finish order (not input order). */
  finished: FinishedLine[];
  status: BatchStatus;
  /** Batch time of the terminal state, once there is one. */
  endedAtMs: number | null;
  outputFileId: string;
  errorFileId: string;
}

export interface BatchTokenStats {
  batches: number;
  linesSucceeded: number;
  linesFailed: number;
  spentUsd: number;
}

/** What the batch API did since the last reset, for tests and benchmarks. */
export interface BatchApiStats extends BatchTokenStats {
  /** Current status of every batch (not reset). */
  byStatus: Record<string, number>;
  byToken: Record<string, BatchTokenStats>;
}

const emptyTokenStats = (): BatchTokenStats => ({
  batches: 0,
  linesSucceeded: 0,
  linesFailed: 0,
  spentUsd: 0,
});

/**
 * What the store uses of the simulator's state (declared here, by its user, so that the state,
 * which owns the store, and the store do not import each other).
 */
export interface BatchStoreHost {
  readonly config: SimConfig;
  readonly credits: CreditLedger;
  readonly url: string;
  now(): number;
  faultRandom: () => number;
}

export class SimBatchStore {
  private readonly files = new Map<string, SimFile>();
  private readonly batches = new Map<string, SimBatch>();
  private counters = { ...emptyTokenStats(), byToken: {} as Record<string, BatchTokenStats> };
  private sequence = 0;

  constructor(private readonly state: BatchStoreHost) {}

  addFile(file: Omit<SimFile, 'id' | 'createdAtSec'>): SimFile {
    const stored: SimFile = { ...file, id: `file-${randomUUID()}`, createdAtSec: nowSec() };
    this.files.set(stored.id, stored);
    return stored;
  }

  /** A file the owner may read, at this provider; undefined otherwise (a 404, as for a stranger's file). */
  file(id: string, ownerId: string, provider: DirectProviderName): SimFile | undefined {
    const file = this.files.get(id);
    return file && file.ownerId === ownerId && file.provider === provider ? file : undefined;
  }

  batch(id: string, ownerId: string, provider: DirectProviderName): SimBatch | undefined {
    const batch = this.batches.get(id);
    if (!batch || batch.owner.id !== ownerId || batch.provider !== provider) return undefined;
    this.advance(batch);
    return batch;
  }

  /** The owner's batches at this provider, newest first. */
  list(ownerId: string, provider: DirectProviderName): SimBatch[] {
    const mine = [...this.batches.values()].filter(
      (batch) => batch.owner.id === ownerId && batch.provider === provider,
    );
    for (const batch of mine) this.advance(batch);
    return mine.reverse();
  }

  create(input: {
    owner: BatchOwner;
    provider: DirectProviderName;
    endpoint: string;
    inputFile: SimFile;
    lines: InputLine[];
    metadata: Record<string, string> | null;
  }): SimBatch {
    const { config } = this.state;
    const api = config.batchApi;
    const turnaroundMs = drawTurnaround(api.turnaround, this.state.faultRandom);
    const id = `batch_${(++this.sequence).toString(36)}${randomUUID().slice(0, 8)}`;
    const batch: SimBatch = {
      id,
      owner: input.owner,
      provider: input.provider,
      style: api.style[input.provider],
      endpoint: input.endpoint,
      inputFile: input.inputFile,
      metadata: input.metadata,
      createdAt: this.state.now(),
      timeScale: api.timeScale,
      createdAtSec: nowSec(),
      validatingMs: api.validatingMs,
      completesAtMs: api.validatingMs + turnaroundMs,
      windowMs: api.completionWindowMs,
      lines: planLines(input.lines, {
        config,
        provider: input.provider,
        endpoint: input.endpoint,
        imageBaseUrl: `${this.state.url}/_sim/images`,
        random: this.state.faultRandom,
        startMs: api.validatingMs,
        turnaroundMs,
      }),
      finished: [],
      status: api.validatingMs > 0 ? 'validating' : 'in_progress',
      endedAtMs: null,
      outputFileId: `file-${randomUUID()}`,
      errorFileId: `file-${randomUUID()}`,
    };
    this.batches.set(id, batch);
    for (const kind of ['output', 'error'] as const) {
      const fileId = kind === 'output' ? batch.outputFileId : batch.errorFileId;
      this.files.set(fileId, {
        id: fileId,
        ownerId: input.owner.id,
        provider: input.provider,
        purpose: 'batch_output',
        filename: `${id}_${kind}.jsonl`,
        bytes: 0,
        createdAtSec: nowSec(),
        batchId: id,
        kind,
      });
    }
    this.tokenStats(input.owner.label).batches++;
    this.counters.batches++;
    return batch;
  }

  /** Stop a batch: what finished stays in its output file. A terminal batch is left as it is. */
  cancel(batch: SimBatch): void {
    this.advance(batch);
    if (TERMINAL.has(batch.status)) return;
    batch.status = 'cancelled';
    batch.endedAtMs = this.elapsed(batch);
  }

  /** The finished lines of an output (2xx) or error file. */
  fileLines(file: SimFile): FinishedLine[] {
    const batch = file.batchId ? this.batches.get(file.batchId) : undefined;
    if (!batch) return [];
    this.advance(batch);
    const ok = file.kind === 'output';
    return batch.finished.filter((line) => isSuccess(line.outcome) === ok);
  }

  /** Advance every batch, then read the counters. */
  stats(): BatchApiStats {
    const byStatus: Record<string, number> = {};
    for (const batch of this.batches.values()) {
      this.advance(batch);
      byStatus[batch.status] = (byStatus[batch.status] ?? 0) + 1;
    }
    return structuredClone({ ...this.counters, byStatus });
  }

  /** Move the owner's unfinished batches to now, so that their spend is in the credits before a real-time request checks them. */
  settle(ownerId: string): void {
    for (const batch of this.batches.values()) if (batch.owner.id === ownerId) this.advance(batch);
  }

  /** Reset the counters (batches themselves go on). */
  resetStats(): void {
    this.counters = { ...emptyTokenStats(), byToken: {} };
  }

  private elapsed(batch: SimBatch): number {
    return (this.state.now() - batch.createdAt) * batch.timeScale;
  }

  private advance(batch: SimBatch): void {
    if (TERMINAL.has(batch.status)) return;
    const elapsed = this.elapsed(batch);
    const until = Math.min(elapsed, batch.windowMs);
    const { lines } = batch;
    let index = batch.finished.length;
    while (index < lines.length && (lines[index]?.finishAtMs ?? Number.POSITIVE_INFINITY) <= until) {
      this.finish(batch, lines[index] as PlannedLine);
      index++;
    }
    if (elapsed >= batch.completesAtMs && batch.completesAtMs <= batch.windowMs) {
      batch.status = 'completed';
      batch.endedAtMs = batch.completesAtMs;
    } else if (elapsed >= batch.windowMs) {
      batch.status = 'expired';
      batch.endedAtMs = batch.windowMs;
    } else if (elapsed < batch.validatingMs) {
      batch.status = 'validating';
    } else {
      // Every line done, the batch not yet: OpenAI's `finalizing` (Together shows it as in progress).
      batch.status = index === lines.length ? 'finalizing' : 'in_progress';
    }
  }

  private finish(batch: SimBatch, line: PlannedLine): void {
    let outcome = line.outcome;
    const stats = this.tokenStats(batch.owner.label);
    if (isSuccess(outcome)) {
      const { credits, account, ledgerLabel } = batch.owner;
      const usd =
        requestCostUsd(credits ?? { balanceUsd: 0 }, outcome.items) * this.state.config.batchApi.priceShare;
      const paid = !credits || this.state.credits.reserveUsd(account, ledgerLabel, credits, usd) !== null;
      if (paid) {
        stats.spentUsd += usd;
        this.counters.spentUsd += usd;
      } else {
        outcome = { status: 402, body: PROVIDER_PAYMENT_REQUIRED[batch.provider], items: outcome.items };
      }
    }
    if (isSuccess(outcome)) {
      stats.linesSucceeded++;
      this.counters.linesSucceeded++;
    } else {
      stats.linesFailed++;
      this.counters.linesFailed++;
    }
    batch.finished.push({ customId: line.customId, requestId: `req_${randomUUID().slice(0, 12)}`, outcome });
  }

  private tokenStats(label: string): BatchTokenStats {
    let stats = this.counters.byToken[label];
    if (!stats) {
      stats = emptyTokenStats();
      this.counters.byToken[label] = stats;
    }
    return stats;
  }
}

export function isSuccess(outcome: LineOutcome): boolean {
  return outcome.status >= 200 && outcome.status < 300;
}

export function isTerminal(status: BatchStatus): boolean {
  return TERMINAL.has(status);
}

function drawTurnaround(turnaround: BatchTurnaround, random: () => number): number {
  if (turnaround.kind === 'stuck') return Number.POSITIVE_INFINITY;
  if (turnaround.kind === 'fixed') return turnaround.ms;
  return turnaround.minMs + random() * (turnaround.maxMs - turnaround.minMs);
}

const nowSec = (): number => Math.floor(Date.now() / 1000);
