/**
 * Progress of a run: a bar redrawn in place on a terminal, plain lines every few seconds otherwise.
 */
export class Progress {
  private enqueuedCount = 0;
  private doneCount = 0;
  private failedCount = 0;
  private readonly started = Date.now();
  private lastPrint = 0;

  constructor(
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream,
  ) {}

  enqueued(n: number): void {
    this.enqueuedCount += n;
    this.render();
  }

  done(ok: boolean): void {
    if (ok) this.doneCount++;
    else this.failedCount++;
    this.render();
  }

  /** Sets absolute counts (when progress is read from queue counts rather than events). */
  set(counts: { enqueued?: number; done?: number; failed?: number }): void {
    if (counts.enqueued !== undefined) this.enqueuedCount = counts.enqueued;
    if (counts.done !== undefined) this.doneCount = counts.done;
    if (counts.failed !== undefined) this.failedCount = counts.failed;
    this.render();
  }

  line(): string {
    const finished = this.doneCount + this.failedCount;
    const seconds = (Date.now() - this.started) / 1000;
    const rate = seconds > 0 ? finished / seconds : 0;
    const eta = rate > 0 ? Math.max(0, (this.total - finished) / rate) : Number.NaN;
    const width = 24;
    const filled = this.total > 0 ? Math.round((finished / this.total) * width) : 0;
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(Math.max(0, width - filled))}]`;
    return `${bar} enqueued ${this.enqueuedCount}/${this.total}  done ${this.doneCount}  failed ${this.failedCount}  ${rate.toFixed(1)}/s  ETA ${Number.isNaN(eta) ? '-' : `${eta.toFixed(0)}s`}`;
  }

  private render(force = false): void {
    const now = Date.now();
    if (this.stream.isTTY) {
      if (!force && now - this.lastPrint < 100) return;
      this.lastPrint = now;
      this.stream.write(`\r${this.line()}`);
      return;
    }
    if (!force && now - this.lastPrint < 2_000) return;
    this.lastPrint = now;
    this.stream.write(`${this.line()}\n`);
  }

  finish(): void {
    this.render(true);
    if (this.stream.isTTY) this.stream.write('\n');
  }
}
