import { spawn } from 'node:child_process';
import { once } from 'node:events';

/**
 * Start `hfq worker` as a child process running the same entry as this one (TypeScript sources
 * through tsx in the workspace, or the built `dist`), and wait for its "worker ready" line.
 */
export async function spawnWorker(
  env: Record<string, string>,
  onWarning: (text: string) => void = (text) => process.stderr.write(`${text}\n`),
): Promise<{ pid: number; stop: () => Promise<void> }> {
  const entry = process.argv[1] as string;
  const child = spawn(process.execPath, [...process.execArgv, entry, 'worker'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  await new Promise<void>((resolve, reject) => {
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      if (buffer.includes('"worker ready"')) {
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    void exited.then(([code]) => reject(new Error(`worker exited with ${code} before it was ready`)));
  });
  // Keep forwarding warnings and errors (logs are JSON lines on stdout), as short human lines.
  child.stdout?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (/"level":(40|50|60)/.test(line)) onWarning(warningText(line, child.pid ?? 0));
    }
  });
  return {
    pid: child.pid ?? 0,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** `worker 123 warn: learned rate lowered (account free, ...)` from one JSON log line. */
function warningText(line: string, pid: number): string {
  try {
    const event = JSON.parse(line) as Record<string, unknown>;
    const level = event.level === 40 ? 'warn' : event.level === 50 ? 'error' : 'fatal';
    const fields = ['account', 'jobId', 'provider', 'status', 'reason']
      .filter((k) => event[k] !== undefined)
      .map((k) => `${k} ${String(event[k])}`);
    return `worker ${pid} ${level}: ${String(event.msg ?? '')}${fields.length ? ` (${fields.join(', ')})` : ''}`;
  } catch {
    return line;
  }
}
