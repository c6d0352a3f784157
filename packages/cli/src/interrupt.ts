/**
 * Ctrl-C (SIGINT), SIGTERM and SIGHUP as a value a command can race its waits against: the first
 * signal asks the command to stop cleanly (write what it has, close its connections); a second
 * one exits at once.
 */
export class Interrupt {
  private resolve: (signal: NodeJS.Signals) => void = () => {};
  /** Resolves with the signal when one arrives; never rejects. */
  readonly promise: Promise<NodeJS.Signals>;
  signal: NodeJS.Signals | undefined;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    if (this.signal) process.exit(130);
    this.signal = signal;
    this.resolve(signal);
  };

  constructor(private readonly signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    this.promise = new Promise((r) => {
      this.resolve = r;
    });
    for (const s of signals) process.on(s, this.onSignal);
  }

  get interrupted(): boolean {
    return this.signal !== undefined;
  }

  /** `value`, or `undefined` once interrupted. */
  async race<T>(value: Promise<T>): Promise<T | undefined> {
    if (this.signal) return undefined;
    return Promise.race([value, this.promise.then(() => undefined)]);
  }

  dispose(): void {
    for (const s of this.signals) process.off(s, this.onSignal);
  }
}
