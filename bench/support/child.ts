/**
 * Child Node processes for benchmarks: TypeScript entry points run through tsx with the
 * `hfq-source` condition, their output kept line by line (a bounded tail plus the lines a caller
 * asks to keep), a wait for a "ready" line, and a stop that escalates to SIGKILL so a benchmark
 * never hangs on a child that does not exit.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** The repository root (children run from here, so `packages/…` paths resolve). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE_ARGS = ['--conditions=hfq-source', '--import', 'tsx'];
const TAIL_LINES = 200;

export interface ChildOptions {
  /** Name used in error messages. */
  label: string;
  /** Script path relative to the repository root, and its arguments. */
  script: string;
  args?: string[];
  /** Environment on top of PATH and HOME (nothing else of the parent's is passed on). */
  env: Record<string, string>;
  /** Lines to keep in full, beyond the tail (for example warnings to report on). */
  keep?: (line: string) => boolean;
  /** Open an IPC channel (`send`, `request`). @defaultValue false */
  ipc?: boolean;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class ChildNode {
  readonly tail: string[] = [];
  readonly kept: string[] = [];
  readonly exited: Promise<ChildExit>;
  private readonly waiters = new Set<(line: string) => void>();
  private readonly child: ChildProcess;

  private constructor(private readonly options: ChildOptions) {
    this.child = spawn(process.execPath, [...NODE_ARGS, options.script, ...(options.args ?? [])], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...options.env },
      stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    });
    let partial = '';
    const onData = (chunk: Buffer) => {
      const text = partial + chunk.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.onLine(line);
    };
    this.child.stdout?.on('data', onData);
    this.child.stderr?.on('data', onData);
    this.exited = once(this.child, 'exit').then(([code, signal]) => ({ code, signal }) as ChildExit);
  }

  static start(options: ChildOptions): ChildNode {
    return new ChildNode(options);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private onLine(line: string): void {
    if (line.trim() === '') return;
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
    if (this.options.keep?.(line)) this.kept.push(line);
    for (const waiter of [...this.waiters]) waiter(line);
  }

  /** Resolves on the first line (already seen or to come) containing `text`; rejects on exit or timeout. */
  waitForLine(text: string, timeoutMs: number): Promise<void> {
    if (this.tail.some((line) => line.includes(text))) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        if (err) reject(err);
        else resolve();
      };
      const waiter = (line: string) => {
        if (line.includes(text)) done();
      };
      const timer = setTimeout(
        () =>
          done(new Error(`${this.options.label}: no "${text}" within ${timeoutMs} ms\n${this.lastLines()}`)),
        timeoutMs,
      );
      this.waiters.add(waiter);
      void this.exited.then(({ code, signal }) =>
        done(
          new Error(`${this.options.label} exited (${code ?? signal}) before "${text}"\n${this.lastLines()}`),
        ),
      );
    });
  }

  /**
   * Send an IPC message and wait for the child's answer: the first message whose `reply` equals
   * `message.cmd`. An answer with an `error` field rejects.
   */
  request<T extends { cmd: string }>(message: T, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const done = (err: Error | undefined, answer?: Record<string, unknown>) => {
        clearTimeout(timer);
        this.child.off('message', onMessage);
        if (err) reject(err);
        else resolve(answer ?? {});
      };
      const onMessage = (answer: unknown) => {
        const reply = answer as Record<string, unknown>;
        if (reply?.reply !== message.cmd) return;
        if (typeof reply.error === 'string') done(new Error(`${this.options.label}: ${reply.error}`));
        else done(undefined, reply);
      };
      const timer = setTimeout(
        () => done(new Error(`${this.options.label}: no answer to "${message.cmd}" within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.child.on('message', onMessage);
      void this.exited.then(({ code, signal }) =>
        done(new Error(`${this.options.label} exited (${code ?? signal}) before answering "${message.cmd}"`)),
      );
      if (!this.running || !this.child.send) {
        done(new Error(`${this.options.label}: not running or no IPC channel`));
        return;
      }
      this.child.send(message, (err) => {
        if (err) done(err);
      });
    });
  }

  lastLines(n = 20): string {
    return this.tail.slice(-n).join('\n');
  }

  /** SIGTERM (or `signal`), then SIGKILL after `killAfterMs` if the process is still there. */
  async stop(options: { signal?: NodeJS.Signals; killAfterMs?: number } = {}): Promise<ChildExit> {
    if (this.running) this.child.kill(options.signal ?? 'SIGTERM');
    const timer = setTimeout(() => {
      if (this.running) this.child.kill('SIGKILL');
    }, options.killAfterMs ?? 15_000);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Start `count` children at once and wait until each has printed `readyText`; on failure all are stopped. */
export async function startChildren(
  count: number,
  options: (index: number) => ChildOptions,
  readyText: string,
  timeoutMs = 90_000,
): Promise<ChildNode[]> {
  const children = Array.from({ length: count }, (_, i) => ChildNode.start(options(i)));
  try {
    await Promise.all(children.map((child) => child.waitForLine(readyText, timeoutMs)));
    return children;
  } catch (err) {
    await stopChildren(children);
    throw err;
  }
}

export async function stopChildren(children: readonly ChildNode[], killAfterMs?: number): Promise<void> {
  await Promise.all(children.map((child) => child.stop(killAfterMs === undefined ? {} : { killAfterMs })));
}
