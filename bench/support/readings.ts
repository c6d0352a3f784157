/** Readings of a run's processes and of Redis: CPU and peak memory from /proc, counters from INFO. */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

export const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used so far; null if it cannot be read. */
export function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** Peak resident set size (VmHWM) of a process, bytes; null if it cannot be read. */
export function peakRssBytes(pid: number | 'self' | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export interface RedisReading {
  totalCommands: number;
  cpuSeconds: number;
  usedMemory: number;
  /** Calls per command (`cmdstat_<name>`). */
  calls: Record<string, number>;
}

export async function readRedis(redis: Redis): Promise<RedisReading> {
  const text = await redis.info('all');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? NaN);
  const calls: Record<string, number> = {};
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls[match[1] as string] = Number(match[2]);
  }
  return {
    totalCommands: field('total_commands_processed'),
    cpuSeconds: field('used_cpu_user') + field('used_cpu_sys'),
    usedMemory: field('used_memory'),
    calls,
  };
}
