import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RedisClient } from './redis-cluster.js';

/** What a script's arguments may be. */
export type ScriptArg = string | number;

/**
 * One of hfq's Lua scripts, run by its SHA1 (`EVALSHA`) and sent whole (`EVAL`, which also caches
 * it) on its first call on a client and whenever the server answers `NOSCRIPT` (a restart, a
 * `SCRIPT FLUSH`, a cluster node that has not seen it yet).
 *
 * Why not ioredis's `defineCommand`: a defined command is a method on the connection, and every
 * pipeline ioredis builds copies each defined command onto itself. hfq's worker state connection
 * is auto-pipelined (one pipeline per event-loop turn) and used to carry hfq's 17 scripts (and
 * BullMQ's 63, through a queue on it), so every turn paid for 240 property writes before its first
 * command. `EVALSHA` is a built-in command: a pipeline carries nothing for it.
 */
export class RedisScript {
  readonly sha: string;
  /** Clients that have sent this script whole once (its first call on each is an `EVAL`, as ioredis does). */
  private readonly sent = new WeakSet<RedisClient>();

  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  /** Runs the script with `keys` and `args`; on a Redis Cluster every key must share one slot. */
  run<T = unknown>(redis: RedisClient, keys: readonly string[], args: readonly ScriptArg[] = []): Promise<T> {
    // (No async wrapper: the permit runs once a job, and each await layer costs a promise and a turn.)
    if (!this.sent.has(redis)) {
      this.sent.add(redis);
      return this.whole(redis, keys, args);
    }
    return (redis.evalsha(this.sha, keys.length, ...keys, ...args) as Promise<T>).catch((err: unknown) => {
      if (!isNoScript(err)) throw err;
      return this.whole<T>(redis, keys, args);
    });
  }

  /** The script sent whole (`EVAL`): the server caches it for the calls by SHA after. */
  private whole<T>(redis: RedisClient, keys: readonly string[], args: readonly ScriptArg[]): Promise<T> {
    return redis.eval(this.lua, keys.length, ...keys, ...args) as Promise<T>;
  }
}

/** The text of `lua/<file>` beside this file (a script, or a part that scripts are composed of). */
export function luaSource(file: string): string {
  return readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');
}

/** The script `lua/<name>.lua`, as it stands alone. */
export function luaScript(name: string): RedisScript {
  return new RedisScript(luaSource(`${name}.lua`));
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}
