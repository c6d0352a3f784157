import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy for network-fault tests, in front of Redis or any TCP server.
 *
 * - `pause()`: stop forwarding in both directions without closing anything. The peers' sockets
 *   stay open and their writes are accepted (by this process), but nothing arrives: a half-open
 *   path, as after a silent network partition. Connections made while paused are accepted and
 *   held the same way.
 * - `resume()`: forward again, including what was held back, in order.
 * - `cut()`: destroy every connection on both sides, as a network cut the peers notice; the
 *   pause, if any, ends with them, so the peers' reconnections go through.
 */
export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private paused = false;
  /** Connections accepted since start (reconnections show up here). */
  accepted = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  /** Listens on a free port of 127.0.0.1 (or `listenPort`) and forwards to `target`. */
  static async start(target: { host?: string; port: number }, listenPort = 0): Promise<TcpProxy> {
    const server = createServer({ pauseOnConnect: true });
    server.listen(listenPort, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    return new TcpProxy(server, port, { host: target.host ?? '127.0.0.1', port: target.port });
  }

  /** `redis://127.0.0.1:<port>`: a Redis URL through the proxy. */
  get redisUrl(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Connections open now. */
  get open(): number {
    return this.pairs.size;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  pause(): void {
    this.paused = true;
    for (const pair of this.pairs) pair.hold();
  }

  resume(): void {
    this.paused = false;
    for (const pair of this.pairs) pair.flow();
  }

  /** Destroy every connection (both sides); new connections are forwarded. */
  cut(): void {
    this.paused = false;
    for (const pair of [...this.pairs]) pair.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.accepted += 1;
    const upstream = connect(this.target.port, this.target.host);
    const pair = new Pair(client, upstream, () => this.pairs.delete(pair));
    this.pairs.add(pair);
    if (!this.paused) pair.flow();
  }
}

/** One proxied connection: the client's socket and the one to the target. */
class Pair {
  private closed = false;
  private holding = true;

  constructor(
    private readonly client: Socket,
    private readonly upstream: Socket,
    private readonly onClose: () => void,
  ) {
    // Sockets start paused (pauseOnConnect; the upstream before its first read): nothing moves
    // until flow(). Backpressure: a full destination pauses its source until it drains.
    this.upstream.pause();
    this.forward(client, upstream);
    this.forward(upstream, client);
    for (const socket of [client, upstream]) {
      socket.on('error', () => this.destroy());
      socket.on('close', () => this.destroy());
    }
  }

  private forward(from: Socket, to: Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => {
      if (!this.holding) from.resume();
    });
  }

  /** Stop reading both sides: bytes stay in the kernel buffers, the peers see no answer and no close. */
  hold(): void {
    this.holding = true;
    this.client.pause();
    this.upstream.pause();
  }

  flow(): void {
    this.holding = false;
    this.client.resume();
    this.upstream.resume();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
    this.upstream.destroy();
    this.onClose();
  }
}
