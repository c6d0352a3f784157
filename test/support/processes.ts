import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** The repository root and the CLI entry, run from TypeScript sources through tsx. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI_ARGS = ['--conditions=hfq-source', '--import', 'tsx', 'packages/cli/src/main.ts'];

/** A real `hfq` OS process (worker, board, …) with its output captured line by line. */
export class HfqProcess {
  readonly lines: string[] = [];
  private readonly waiters: { test: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        this.lines.push(line);
        for (const waiter of [...this.waiters]) {
          if (waiter.test(line)) {
            this.waiters.splice(this.waiters.indexOf(waiter), 1);
            waiter.resolve(line);
          }
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = once(child, 'exit').then(
      ([code, signal]) => ({ code, signal }) as { code: number | null; signal: NodeJS.Signals | null },
    );
  }

  static start(args: string[], env: Record<string, string | undefined>): HfqProcess {
    const child = spawn(process.execPath, [...CLI_ARGS, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new HfqProcess(child);
  }

  /** Resolves with the first output line (past or future) that passes `test`; rejects on exit or timeout. */
  waitForLine(test: (line: string) => boolean, timeoutMs = 30_000): Promise<string> {
    const seen = this.lines.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`no matching line within ${timeoutMs} ms:\n${this.lines.slice(-20).join('\n')}`)),
        timeoutMs,
      );
      const waiter = {
        test,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      this.waiters.push(waiter);
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(
          new Error(
            `process exited (${code ?? signal}) before the line:\n${this.lines.slice(-20).join('\n')}`,
          ),
        );
      });
    });
  }

  /** Parsed JSON log lines (pino). */
  events(): Record<string, unknown>[] {
    return this.lines.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  async stop(
    signal: NodeJS.Signals = 'SIGTERM',
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

/** Starts a worker process and waits for its "worker ready" line. */
export async function startWorkerProcess(env: Record<string, string | undefined>): Promise<HfqProcess> {
  const proc = HfqProcess.start(['worker'], env);
  await proc.waitForLine((line) => line.includes('"worker ready"'), 60_000);
  return proc;
}
