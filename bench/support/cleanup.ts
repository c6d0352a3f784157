/**
 * Teardown for benchmarks: every server, process and connection registers how to stop it, and
 * everything registered is stopped once, in reverse order, at the end of the run, on an error,
 * or on SIGINT/SIGTERM to the benchmark itself.
 */

type Task = { label: string; run: () => Promise<unknown> | unknown };

export class Cleanup {
  private tasks: Task[] = [];
  private running: Promise<void> | undefined;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: stopping every process and server …\n`);
    void this.runAll().finally(() => process.exit(130));
  };

  constructor() {
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }

  /** Register a teardown; returns a function that runs it now (and unregisters it). */
  add(label: string, run: () => Promise<unknown> | unknown): () => Promise<void> {
    const task: Task = { label, run };
    this.tasks.push(task);
    return async () => {
      const index = this.tasks.indexOf(task);
      if (index < 0) return;
      this.tasks.splice(index, 1);
      await task.run();
    };
  }

  /** Run every registered teardown, newest first; errors are reported, not thrown. */
  runAll(): Promise<void> {
    this.running ??= (async () => {
      while (this.tasks.length > 0) {
        const task = this.tasks.pop() as Task;
        try {
          await task.run();
        } catch (err) {
          process.stderr.write(`cleanup "${task.label}" failed: ${(err as Error).message}\n`);
        }
      }
      process.off('SIGINT', this.onSignal);
      process.off('SIGTERM', this.onSignal);
    })();
    return this.running;
  }
}
