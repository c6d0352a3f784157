import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { describe, expect, it } from 'vitest';
import { HfqProcess } from './support/processes.js';
import { waitFor } from './support/wait.js';

/**
 * `hfq demo` interrupted: a SIGINT or SIGHUP sent to the demo process alone (its workers get
 * nothing) still stops its workers, its simulator and its Redis, and removes its temp folder.
 */

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('hfq demo cleanup', () => {
  for (const signal of ['SIGINT', 'SIGHUP'] as const) {
    it(`stops its workers, Redis and temp folder on a ${signal} sent to the demo alone`, {
      timeout: 180_000,
    }, async () => {
      // No REDIS_URL: the demo starts a Redis of its own (Docker or redis-server).
      const demo = HfqProcess.start(['demo', '--jobs', '5000'], { REDIS_URL: undefined, LOG_LEVEL: 'info' });
      const workersLine = await demo.waitForLine((l) => /workers: pid \d+, \d+/.test(l), 150_000);
      const pids = (/pid (\d+), (\d+)/.exec(workersLine) as RegExpExecArray).slice(1).map(Number);
      const dir = (/files: (\S+)/.exec(demo.lines.find((l) => l.includes('files: ')) ?? '') ??
        [])[1] as string;
      const redisLine = demo.lines.find((l) => l.includes('redis: ')) ?? '';
      const port = Number(/:(\d+)\s*$/.exec(redisLine)?.[1]);
      expect(pids.every(alive)).toBe(true);
      expect(existsSync(dir)).toBe(true);

      demo.child.kill(signal);
      const exit = await demo.exited;
      expect(exit.code, demo.lines.slice(-30).join('\n')).toBe(130);
      expect(demo.lines.some((l) => l.startsWith('interrupted: stopping'))).toBe(true);
      await waitFor(() => !pids.some(alive), 'the workers to exit', 30_000);
      expect(existsSync(dir)).toBe(false);
      if (redisLine.includes('redis-server')) expect(await portOpen(port)).toBe(false);
    });
  }
});
