import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A Redis for tests and the demo, picked in this order: `REDIS_URL` if set; else testcontainers'
 * Redis module when a Docker engine answers; else a `redis-server` from PATH on a free port with
 * its own temporary directory; else an error saying how to get one.
 */

export interface LocalRedis {
  url: string;
  source: 'env' | 'testcontainers' | 'redis-server';
  stop(): Promise<void>;
}

export interface LocalRedisOptions {
  /** Environment to read `REDIS_URL` and `DOCKER_HOST` from. @defaultValue process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** Ignore `REDIS_URL` (fault tests always need a Redis of their own). @defaultValue false */
  own?: boolean;
}

export async function startLocalRedis(options: LocalRedisOptions = {}): Promise<LocalRedis> {
  const env = options.env ?? process.env;
  if (!options.own && env.REDIS_URL) {
    return { url: env.REDIS_URL, source: 'env', stop: async () => {} };
  }
  if (await dockerAnswers(env)) {
    const started = await startWithTestcontainers();
    if (started) return started;
  }
  if (await onPath('redis-server')) {
    const server = await SpawnedRedis.start();
    return { url: server.url, source: 'redis-server', stop: () => server.stop() };
  }
  throw new Error(
    'No Redis available. Set REDIS_URL=redis://host:port, or start a Docker engine (testcontainers runs redis:7), ' +
      'or install redis-server (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis).',
  );
}

async function dockerAnswers(env: Readonly<Record<string, string | undefined>>): Promise<boolean> {
  if (!env.DOCKER_HOST && !existsSync('/var/run/docker.sock')) return false;
  return new Promise((resolve) => {
    execFile('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 5_000 }, (err, stdout) =>
      resolve(!err && stdout.trim().length > 0),
    );
  });
}

async function startWithTestcontainers(): Promise<LocalRedis | undefined> {
  try {
    const { RedisContainer } = await import('@testcontainers/redis');
    const container = await new RedisContainer('redis:7-alpine').start();
    return {
      url: container.getConnectionUrl(),
      source: 'testcontainers',
      stop: async () => {
        await container.stop();
      },
    };
  } catch {
    return undefined;
  }
}

function onPath(command: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(command, ['--version'], { timeout: 5_000 }, (err) => resolve(!err));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A `redis-server` child process on a free port, with its own directory; can be killed and restarted (fault tests). */
export class SpawnedRedis {
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly appendOnly: boolean,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(options: { appendOnly?: boolean; port?: number } = {}): Promise<SpawnedRedis> {
    const port = options.port ?? (await freePort());
    const dir = mkdtempSync(join(tmpdir(), 'hfq-redis-'));
    const server = new SpawnedRedis(port, dir, options.appendOnly ?? false);
    await server.launch();
    return server;
  }

  /** Start (again) on the same port and directory: with AOF on, the data comes back. */
  async launch(): Promise<void> {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--save',
      '',
      '--appendonly',
      this.appendOnly ? 'yes' : 'no',
      '--appendfsync',
      'always',
      '--maxmemory-policy',
      'noeviction',
      '--protected-mode',
      'no',
      '--loglevel',
      'warning',
    ];
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.child = child;
    const exited = new Promise<never>((_, reject) => {
      child.once('exit', (code) =>
        reject(new Error(`redis-server exited with ${code} on port ${this.port}`)),
      );
    });
    await Promise.race([waitForPort(this.port, 10_000), exited]);
  }

  /** Kill the server at once (SIGKILL by default), as a crash would. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await gone;
    this.child = undefined;
  }

  async stop(): Promise<void> {
    await this.kill('SIGTERM');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.write('PING\r\n');
      });
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString().startsWith('+PONG'));
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
