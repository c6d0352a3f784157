/**
 * Progress of a run: a bar redrawn in place on a terminal (the line cleared first), plain lines
 * every few seconds otherwise. The rate counts only completions this run saw happen, over a
 * sliding window, so results that were ready before a resumed run started do not inflate it.
 */

import { etaMs, RECENT_RATE_WINDOW_MS as RATE_WINDOW_MS, recentRate } from '@hfq/shared/internal';
import { clockText, slackText } from './deadline-projection.js';

export class Progress {
  private enqueuedCount = 0;
  private doneCount: number;
  private failedCount: number;
  private readonly started = Date.now();
  private lastPrint = 0;
  private note = '';
  private stopped = false;
  /** New completions, as (time, cumulative count) samples within the window. */
  private fresh = 0;
  private samples: [number, number][] = [];
  private baseline: number | undefined;
  /** `--deadline`: epoch ms the run should be done by. */
  private deadlineMs: number | undefined;

  constructor(
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream,
    held: { done: number; failed: number } = { done: 0, failed: 0 },
  ) {
    this.doneCount = held.done;
    this.failedCount = held.failed;
  }

  enqueued(n: number): void {
    this.enqueuedCount += n;
    this.render();
  }

  /** One job finished; `fresh` when it finished during this run (it counts toward the rate). */
  done(ok: boolean, fresh = true): void {
    if (ok) this.doneCount++;
    else this.failedCount++;
    if (fresh) this.sample(this.fresh + 1);
    this.render();
  }

  /**
   * Sets absolute counts (when progress is read from queue counts rather than events). The first
   * reading is the baseline: only what finishes after it counts toward the rate.
   */
  set(counts: { enqueued?: number; done?: number; failed?: number }): void {
    if (counts.enqueued !== undefined) this.enqueuedCount = counts.enqueued;
    if (counts.done !== undefined) this.doneCount = counts.done;
    if (counts.failed !== undefined) this.failedCount = counts.failed;
    const finished = this.doneCount + this.failedCount;
    this.baseline ??= finished;
    this.sample(finished - this.baseline);
    this.render();
  }

  /** Show the projected finish (now + ETA) against this deadline (epoch ms) on every line. */
  setDeadline(atMs: number): void {
    this.deadlineMs = atMs;
  }

  /** State shown at the end of the line (paused, held, credits), or '' for none. */
  setNote(note: string): void {
    if (note === this.note) return;
    this.note = note;
    this.render(true);
  }

  get failed(): number {
    return this.failedCount;
  }

  get finished(): number {
    return this.doneCount + this.failedCount;
  }

  /** Completions per second over the window, or undefined before there is a measure. */
  rate(now = Date.now()): number | undefined {
    // The same rate the cockpit's ETA uses (recent-rate.ts).
    return recentRate(this.samples, now);
  }

  line(): string {
    const finished = this.finished;
    const rate = this.rate();
    const left = etaMs(this.total - finished, rate);
    const eta = left === undefined ? undefined : left / 1000;
    const width = 24;
    const filled = this.total > 0 ? Math.min(width, Math.round((finished / this.total) * width)) : 0;
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    const parts = [
      bar,
      `enqueued ${this.enqueuedCount}/${this.total}`,
      `done ${this.doneCount}`,
      `failed ${this.failedCount}`,
      rate === undefined ? '-/s' : `${rate.toFixed(1)}/s`,
      `ETA ${eta === undefined ? '-' : duration(eta)}`,
    ];
    if (this.deadlineMs !== undefined) parts.push(this.deadlineText(left));
    if (this.note) parts.push(this.note);
    return parts.join('  ');
  }

  /** `finish ~16:20Z, 1 h 05 m before deadline 17:25Z` while the rate is known. */
  private deadlineText(leftMs: number | undefined): string {
    const deadline = this.deadlineMs as number;
    const now = Date.now();
    if (this.finished >= this.total) return `deadline ${clockText(deadline, now)}`;
    if (leftMs === undefined) return `finish ? (deadline ${clockText(deadline, now)})`;
    const finish = now + leftMs;
    return `finish ~${clockText(finish, now)}, ${slackText(finish, deadline)} deadline ${clockText(deadline, now)}`;
  }

  /** Clear the bar (a terminal) so other output can be printed; the next update redraws it. */
  clear(): void {
    if (this.stream.isTTY) this.stream.write('\r\x1b[2K');
  }

  /** Print a line of other output above the bar: clear it, print, redraw (a terminal); else just print. */
  print(text: string): void {
    if (this.stopped) return void process.stderr.write(`${text}\n`);
    this.clear();
    this.stream.write(`${text}\n`);
    if (this.stream.isTTY) this.render(true);
  }

  /** No more drawing (the run was interrupted; late results must not redraw the bar). */
  stop(): void {
    this.stopped = true;
  }

  /** The final summary line: done, failed, time, and where the results are. */
  summary(out: string | undefined): string {
    const seconds = (Date.now() - this.started) / 1000;
    const where = out ? `; results in ${out}` : '';
    return `done ${this.doneCount}, failed ${this.failedCount} of ${this.total} in ${duration(seconds)}${where}`;
  }

  finish(): void {
    this.render(true);
    if (this.stream.isTTY) this.stream.write('\n');
  }

  private sample(freshTotal: number): void {
    const now = Date.now();
    this.fresh = freshTotal;
    this.samples.push([now, freshTotal]);
    // Keep one sample older than the window's start as its left edge.
    while (this.samples.length > 2 && (this.samples[1]?.[0] ?? now) <= now - RATE_WINDOW_MS)
      this.samples.shift();
    if (this.samples.length > 4096) this.samples.splice(1, this.samples.length - 2048);
  }

  private render(force = false): void {
    if (this.stopped) return;
    const now = Date.now();
    if (this.stream.isTTY) {
      if (!force && now - this.lastPrint < 100) return;
      this.lastPrint = now;
      this.stream.write(`\r\x1b[2K${this.line()}`);
      return;
    }
    if (!force && now - this.lastPrint < 2_000) return;
    this.lastPrint = now;
    this.stream.write(`${this.line()}\n`);
  }
}

/** 75 → "1m15s", 9.4 → "9s", 3725 → "1h02m". */
export function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
