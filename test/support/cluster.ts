import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { freePort } from '../../packages/cli/src/local-redis.js';
import { waitFor } from './wait.js';

/**
 * A real Redis Cluster (or Valkey cluster) for tests: `--cluster-enabled yes` server processes on
 * free loopback ports, each with its own config file in one temporary directory, joined with
 * `<cli> --cluster create … --cluster-yes`. Masters own the slots; with replicas, killing a
 * master makes its replica take over (a real failover, after `nodeTimeoutMs`). Every process is
 * killed by its PID on `stop()`, and on process exit if a test forgot.
 */

export type ClusterServer = 'redis' | 'valkey';

const BINARIES: Record<ClusterServer, { server: string; cli: string }> = {
  redis: { server: 'redis-server', cli: 'redis-cli' },
  valkey: { server: 'valkey-server', cli: 'valkey-cli' },
};

export interface ClusterStartOptions {
  /** @defaultValue 'redis' */
  server?: ClusterServer;
  /** @defaultValue 3 (the least `--cluster create` accepts) */
  masters?: number;
  /** Replicas per master, for failover tests. @defaultValue 0 */
  replicas?: number;
  /** `cluster-node-timeout`: how long a master must be unreachable before its replica takes over. @defaultValue 2000 */
  nodeTimeoutMs?: number;
}

export interface ClusterNodeInfo {
  port: number;
  role: 'master' | 'replica';
  /** Slot ranges a master serves, inclusive. */
  slots: [number, number][];
}

/** Whether the server and CLI binaries of `server` are on PATH. */
export function clusterServerAvailable(server: ClusterServer): Promise<boolean> {
  const { server: bin, cli } = BINARIES[server];
  const works = (command: string) =>
    new Promise<boolean>((resolve) => {
      execFile(command, ['--version'], { timeout: 5_000 }, (err) => resolve(!err));
    });
  return Promise.all([works(bin), works(cli)]).then(([a, b]) => a && b);
}

/** PIDs of every cluster process this test process started and has not stopped yet. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function killOnExit(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) if (c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
  });
}

class ClusterProcess {
  child: ChildProcess | undefined;
  constructor(
    readonly port: number,
    readonly busPort: number,
  ) {}
  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }
}

export class SpawnedCluster {
  private readonly processes: ClusterProcess[];
  private stopped = false;

  private constructor(
    readonly server: ClusterServer,
    readonly dir: string,
    ports: { port: number; busPort: number }[],
    private readonly nodeTimeoutMs: number,
  ) {
    this.processes = ports.map((p) => new ClusterProcess(p.port, p.busPort));
  }

  static async start(options: ClusterStartOptions = {}): Promise<SpawnedCluster> {
    const server = options.server ?? 'redis';
    const masters = options.masters ?? 3;
    const replicas = options.replicas ?? 0;
    const count = masters * (1 + replicas);
    const ports: { port: number; busPort: number }[] = [];
    const taken = new Set<number>();
    while (ports.length < count) {
      const port = await freePort();
      const busPort = await freePort();
      if (port === busPort || taken.has(port) || taken.has(busPort)) continue;
      taken.add(port).add(busPort);
      ports.push({ port, busPort });
    }
    const dir = mkdtempSync(join(tmpdir(), `hfq-${server}-cluster-`));
    const cluster = new SpawnedCluster(server, dir, ports, options.nodeTimeoutMs ?? 2_000);
    try {
      await Promise.all(cluster.processes.map((p) => cluster.launch(p)));
      await cluster.create(replicas);
      await cluster.waitUntilOk(30_000);
      // Replica roles spread by gossip after `--cluster create` returns: wait until every node sees them.
      await waitFor(
        async () => {
          const views = await cluster.eachNode(async (redis) =>
            parseClusterNodes(String(await redis.call('CLUSTER', 'NODES').catch(() => ''))),
          );
          return views.every(
            (nodes) => nodes.filter((n) => n.role === 'replica').length === masters * replicas,
          );
        },
        'every node to see the replicas',
        30_000,
        100,
      );
      // A replica is seen before its link is up (its first sync still running): until then a
      // master's WAIT counts no replica, and a master killed loses what it wrote.
      if (replicas > 0) await cluster.waitForReplicasOnline(replicas, 30_000);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** `127.0.0.1:p1,127.0.0.1:p2,…`: the value of `REDIS_CLUSTER_NODES`. */
  get nodesEnv(): string {
    return this.processes.map((p) => `127.0.0.1:${p.port}`).join(',');
  }

  get ports(): number[] {
    return this.processes.map((p) => p.port);
  }

  /** A cluster client for assertions; close it in the test. */
  client(): Cluster {
    return new Cluster(
      this.processes.filter((p) => p.alive).map((p) => ({ host: '127.0.0.1', port: p.port })),
      { redisOptions: { maxRetriesPerRequest: 3 }, retryDelayOnFailover: 200 },
    );
  }

  /** A plain connection to one node (CLUSTER commands, INFO, SCAN of that node). */
  node(port: number): Redis {
    return new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, lazyConnect: false });
  }

  /** Runs `fn` with a plain connection to each live node in turn, closing them after. */
  async eachNode<T>(fn: (redis: Redis, port: number) => Promise<T>): Promise<T[]> {
    const out: T[] = [];
    for (const p of this.processes.filter((q) => q.alive)) {
      const redis = this.node(p.port);
      try {
        out.push(await fn(redis, p.port));
      } finally {
        redis.disconnect();
      }
    }
    return out;
  }

  /** The topology as a live node sees it (`CLUSTER NODES`): masters with their slots, replicas. */
  async topology(): Promise<ClusterNodeInfo[]> {
    const alive = this.processes.find((p) => p.alive);
    if (!alive) throw new Error('no cluster node is running');
    const redis = this.node(alive.port);
    try {
      const text = (await redis.call('CLUSTER', 'NODES')) as string;
      return parseClusterNodes(text);
    } finally {
      redis.disconnect();
    }
  }

  /** Port of the master that serves `slot`. */
  async masterOfSlot(slot: number): Promise<number> {
    const master = (await this.topology()).find(
      (n) => n.role === 'master' && n.slots.some(([a, b]) => slot >= a && slot <= b),
    );
    if (!master) throw new Error(`no master serves slot ${slot}`);
    return master.port;
  }

  /** Port of the master that serves `key` (its slot from `CLUSTER KEYSLOT`). */
  async masterOfKey(key: string): Promise<number> {
    return this.masterOfSlot(await this.keySlot(key));
  }

  async keySlot(key: string): Promise<number> {
    const alive = this.processes.find((p) => p.alive);
    if (!alive) throw new Error('no cluster node is running');
    const redis = this.node(alive.port);
    try {
      return Number(await redis.call('CLUSTER', 'KEYSLOT', key));
    } finally {
      redis.disconnect();
    }
  }

  /** Kill one node at once (SIGKILL by default), as a crash would. */
  async kill(port: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.processes.find((p) => p.port === port);
    const child = proc?.child;
    if (!proc || !child || !proc.alive) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await gone;
  }

  /**
   * After `kill(port)` of a master: resolves once every live node sees another master serve the
   * dead one's slots and the cluster is whole again (`cluster_state:ok`).
   */
  async waitForFailover(port: number, timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => {
        const views = await this.eachNode(async (redis) =>
          parseClusterNodes(((await redis.call('CLUSTER', 'NODES').catch(() => '')) as string) || ''),
        );
        return views.every((nodes) =>
          nodes.every((n) => !(n.port === port && n.role === 'master' && n.slots.length > 0)),
        );
      },
      `a replica taking over the slots of the master on port ${port}`,
      timeoutMs,
      100,
    );
    await this.waitUntilOk(timeoutMs);
  }

  /** Resolves once every live node reports `cluster_state:ok` and agrees that every slot is served. */
  async waitUntilOk(timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => {
        const states = await this.eachNode(async (redis) => {
          const info = (await redis.call('CLUSTER', 'INFO').catch(() => '')) as string;
          return /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info);
        });
        return states.length > 0 && states.every(Boolean);
      },
      `cluster_state:ok on every ${this.server} node`,
      timeoutMs,
      100,
    );
  }

  /**
   * Resolves once every replica has received what its master had written when this was called
   * (replication is asynchronous: a master killed before that loses its last writes).
   */
  async waitForReplication(timeoutMs = 10_000): Promise<void> {
    await this.eachSlotMaster(async (redis, port) => {
      const text = String(await redis.info('replication'));
      const target = Number(/master_repl_offset:(\d+)/.exec(text)?.[1] ?? 0);
      await waitFor(
        async () => {
          const now = String(await redis.info('replication'));
          const offsets = [...now.matchAll(/^slave\d+:.*offset=(\d+)/gm)].map((m) => Number(m[1]));
          return offsets.length > 0 && offsets.every((o) => o >= target);
        },
        `replicas of the master on port ${port} to catch up`,
        timeoutMs,
      );
    });
  }

  /** Resolves once every master that owns slots has `perMaster` replicas online (INFO replication). */
  private async waitForReplicasOnline(perMaster: number, timeoutMs: number): Promise<void> {
    await this.eachSlotMaster((redis, port) =>
      waitFor(
        async () => {
          const text = String(await redis.info('replication'));
          return [...text.matchAll(/^slave\d+:.*state=online/gm)].length >= perMaster;
        },
        `the replicas of the master on port ${port} to come online`,
        timeoutMs,
        100,
      ),
    );
  }

  /** Run `fn` against each master that owns slots, one at a time, on a connection of its own. */
  private async eachSlotMaster(fn: (redis: Redis, port: number) => Promise<void>): Promise<void> {
    const masters = (await this.topology()).filter((n) => n.role === 'master' && n.slots.length > 0);
    for (const master of masters) {
      const redis = this.node(master.port);
      try {
        await fn(redis, master.port);
      } finally {
        redis.disconnect();
      }
    }
  }

  /** Kill every node (by PID) and remove the directory. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.processes.map((p) => this.kill(p.port, 'SIGKILL')));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async launch(proc: ClusterProcess): Promise<void> {
    const args = [
      '--port',
      String(proc.port),
      '--cluster-port',
      String(proc.busPort),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      `nodes-${proc.port}.conf`,
      '--cluster-node-timeout',
      String(this.nodeTimeoutMs),
      // A replica may always take over, however long it was cut off: tests kill masters on purpose.
      '--cluster-replica-validity-factor',
      '0',
      '--dir',
      this.dir,
      '--dbfilename',
      `dump-${proc.port}.rdb`,
      '--save',
      '',
      '--appendonly',
      'no',
      '--maxmemory-policy',
      'noeviction',
      '--protected-mode',
      'no',
      '--loglevel',
      'warning',
      '--logfile',
      join(this.dir, `node-${proc.port}.log`),
    ];
    const child = spawn(BINARIES[this.server].server, args, { stdio: 'ignore' });
    proc.child = child;
    killOnExit(child);
    const exited = new Promise<never>((_, reject) => {
      child.once('exit', (code) =>
        reject(
          new Error(`${this.server} node on port ${proc.port} exited with ${code} (log in ${this.dir})`),
        ),
      );
    });
    exited.catch(() => {});
    await Promise.race([this.waitForPing(proc.port, 10_000), exited]);
  }

  private async waitForPing(port: number, timeoutMs: number): Promise<void> {
    const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => 50 });
    redis.on('error', () => {});
    try {
      await waitFor(
        async () => (await redis.ping().catch(() => '')) === 'PONG',
        `${this.server} node on port ${port}`,
        timeoutMs,
      );
    } finally {
      redis.disconnect();
    }
  }

  private create(replicas: number): Promise<void> {
    const args = [
      '--cluster',
      'create',
      ...this.processes.map((p) => `127.0.0.1:${p.port}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    ];
    return new Promise((resolve, reject) => {
      execFile(BINARIES[this.server].cli, args, { timeout: 60_000 }, (err, stdout, stderr) => {
        if (err)
          reject(new Error(`${BINARIES[this.server].cli} --cluster create failed: ${stderr || stdout}`));
        else resolve();
      });
    });
  }
}

/** `CLUSTER NODES` text → nodes with their role and slot ranges (failed nodes left out). */
export function parseClusterNodes(text: string): ClusterNodeInfo[] {
  const nodes: ClusterNodeInfo[] = [];
  for (const line of text.trim().split('\n')) {
    const fields = line.trim().split(' ');
    const address = fields[1] ?? '';
    const flags = (fields[2] ?? '').split(',');
    if (fields.length < 8 || flags.includes('fail') || flags.includes('noaddr')) continue;
    const port = Number(/:(\d+)/.exec(address)?.[1]);
    const slots: [number, number][] = [];
    for (const range of fields.slice(8)) {
      if (range.startsWith('[')) continue; // a slot being migrated
      const [a, b] = range.split('-').map(Number);
      if (a !== undefined && Number.isInteger(a)) slots.push([a, b ?? a]);
    }
    nodes.push({ port, role: flags.includes('master') ? 'master' : 'replica', slots });
  }
  return nodes;
}
