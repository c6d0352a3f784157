/**
 * The request log and the counters tests and benchmarks read. Raw tokens are never stored:
 * records carry the token's label (or a short hash). The log is bounded; counters are not.
 */
import type { CreditSnapshot } from './credits.js';
import { maxInWindow } from './max-in-window.js';

export type RouteKind = 'hub' | 'router' | 'provider';
export type AuthorizationKind = 'hf' | 'provider-key' | 'none';
export type FaultKind =
  | 'error5xx'
  | 'overloaded'
  | 'garbage'
  | 'html'
  | 'truncated-json'
  | 'oversized'
  | 'hang'
  | 'reset';

export interface RequestRecord {
  /** Arrival order, from 1. */
  seq: number;
  /** Arrival time on the simulator's clock (ms). */
  t: number;
  durationMs: number;
  route: RouteKind;
  /** Provider that served (or would have served) the request; null if none was resolved. */
  provider: string | null;
  /** Path without the query string. */
  path: string;
  /** Hugging Face model id, when resolved. */
  model: string | null;
  /** Status sent; 0 when nothing was sent (hang, reset, client gone first). */
  status: number;
  tokenLabel: string;
  authorizationKind: AuthorizationKind;
  /** Value of `X-HF-Bill-To`, if sent. */
  billTo: string | null;
  /** Input items (array length, else 1). */
  items: number;
  fault: FaultKind | null;
  scripted: boolean;
  requestId: string;
}

/** Fields to match (all given must match); `billTo: true` matches any bill-to header, `false` none. */
export interface RecordQuery {
  route?: RouteKind;
  provider?: string;
  path?: string;
  model?: string;
  status?: number;
  tokenLabel?: string;
  authorizationKind?: AuthorizationKind;
  fault?: FaultKind;
  scripted?: boolean;
  billTo?: string | boolean;
}

export type RequestFilter = RecordQuery | ((record: RequestRecord) => boolean);

export interface WindowCounts {
  /** Most non-429 answers in any window. */
  admitted: number;
  /** Most arrivals in any window. */
  arrivals: number;
}

export interface SimStats {
  total: number;
  inFlight: number;
  /** Requests currently held open by a hang fault. */
  hanging: number;
  maxConcurrent: number;
  /** Arrival time of the first and last recorded request (simulator clock, ms). */
  firstAt: number | null;
  lastAt: number | null;
  byStatus: Record<string, number>;
  byRoute: Record<string, number>;
  byProvider: Record<string, number>;
  byToken: Record<string, { total: number; byStatus: Record<string, number> }>;
  byFault: Record<string, number>;
  scripted: number;
  /** Things a direct-mode provider should never see. */
  headerLeaks: { billToAtProvider: number; hfTokenAtProvider: number };
  /** Balances of the credit accounts in use, by `token:<label>` / `org:<name>`. */
  credits: Record<string, CreditSnapshot>;
  /** The most recent records, oldest first. */
  log: RequestRecord[];
  /** Records dropped from the head of the log because of its bound. */
  logDropped: number;
}

export function matches(record: RequestRecord, filter: RequestFilter | undefined): boolean {
  if (!filter) return true;
  if (typeof filter === 'function') return filter(record);
  for (const [key, expected] of Object.entries(filter)) {
    if (expected === undefined) continue;
    if (key === 'billTo') {
      const actual = record.billTo;
      if (typeof expected === 'boolean' ? (actual !== null) !== expected : actual !== expected) return false;
    } else if (record[key as keyof RequestRecord] !== expected) {
      return false;
    }
  }
  return true;
}

const bump = (counts: Record<string, number>, key: string): void => {
  counts[key] = (counts[key] ?? 0) + 1;
};

export class Recorder {
  private log: RequestRecord[] = [];
  private head = 0;
  private dropped = 0;
  private seq = 0;
  private inFlight = 0;
  private hanging = 0;
  private maxConcurrent = 0;
  private firstAt: number | null = null;
  private lastAt: number | null = null;
  private counts = Recorder.emptyCounts();

  constructor(private limit: number) {}

  private static emptyCounts() {
    return {
      total: 0,
      scripted: 0,
      byStatus: {} as Record<string, number>,
      byRoute: {} as Record<string, number>,
      byProvider: {} as Record<string, number>,
      byToken: {} as Record<string, { total: number; byStatus: Record<string, number> }>,
      byFault: {} as Record<string, number>,
      headerLeaks: { billToAtProvider: 0, hfTokenAtProvider: 0 },
    };
  }

  setLimit(limit: number): void {
    this.limit = limit;
  }

  /** A request arrived; returns its sequence number. */
  begin(t: number): number {
    this.inFlight++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.inFlight);
    this.firstAt ??= t;
    this.lastAt = Math.max(this.lastAt ?? t, t);
    return ++this.seq;
  }

  /** A request is now held open by a hang fault. */
  hangStarted(): void {
    this.hanging++;
  }

  /** The request is over (answered, or its connection closed). */
  end(record: RequestRecord): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (record.fault === 'hang') this.hanging = Math.max(0, this.hanging - 1);
    const counts = this.counts;
    counts.total++;
    if (record.scripted) counts.scripted++;
    bump(counts.byStatus, String(record.status));
    bump(counts.byRoute, record.route);
    if (record.provider) bump(counts.byProvider, record.provider);
    const token = counts.byToken[record.tokenLabel] ?? { total: 0, byStatus: {} };
    counts.byToken[record.tokenLabel] = token;
    token.total++;
    bump(token.byStatus, String(record.status));
    if (record.fault) bump(counts.byFault, record.fault);
    if (record.route === 'provider') {
      if (record.billTo !== null) counts.headerLeaks.billToAtProvider++;
      if (record.authorizationKind === 'hf') counts.headerLeaks.hfTokenAtProvider++;
    }
    this.log.push(record);
    if (this.log.length - this.head > this.limit) {
      this.head++;
      this.dropped++;
    }
    if (this.head > 4096 && this.head * 2 > this.log.length) {
      this.log = this.log.slice(this.head);
      this.head = 0;
    }
  }

  records(filter?: RequestFilter): RequestRecord[] {
    const kept = this.log.slice(this.head);
    return filter ? kept.filter((record) => matches(record, filter)) : kept;
  }

  windowCounts(windowMs: number, filter?: RequestFilter): WindowCounts {
    const selected = this.records(filter);
    return {
      admitted: maxInWindow(
        selected.filter((record) => record.status !== 429).map((record) => record.t),
        windowMs,
      ),
      arrivals: maxInWindow(
        selected.map((record) => record.t),
        windowMs,
      ),
    };
  }

  stats(credits: Record<string, CreditSnapshot>, includeLog: boolean): SimStats {
    const counts = structuredClone(this.counts);
    return {
      ...counts,
      inFlight: this.inFlight,
      hanging: this.hanging,
      maxConcurrent: this.maxConcurrent,
      firstAt: this.firstAt,
      lastAt: this.lastAt,
      credits,
      log: includeLog ? this.records() : [],
      logDropped: this.dropped,
    };
  }

  /** Clear the log and counters; requests still in flight keep counting as in flight. */
  reset(): void {
    this.log = [];
    this.head = 0;
    this.dropped = 0;
    this.counts = Recorder.emptyCounts();
    this.maxConcurrent = this.inFlight;
    this.firstAt = null;
    this.lastAt = null;
  }
}
