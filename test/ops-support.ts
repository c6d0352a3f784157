import type { Job } from '@hfq/shared';
import { createLogger, type Logger } from '@hfq/shared';
import { HfqProcess } from './support/processes.js';

/** Helpers shared by the operations tests (board, metrics, shutdown, browser). */

export const silentLogger = (): Logger => createLogger({ level: 'silent' });

export function basicHeader(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** GET (or another method) with optional basic auth; the body read as text. */
export async function http(
  url: string,
  options: { method?: string; auth?: [string, string]; body?: unknown } = {},
): Promise<{ status: number; text: string; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (options.auth) headers.authorization = basicHeader(...options.auth);
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, {
    method: options.method ?? 'GET',
    headers,
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

export function chatJob(account: string, content: string): Job {
  return {
    account,
    task: 'chat-completion',
    model: 'meta-llama/Llama-3.1-8B-Instruct',
    messages: [{ role: 'user', content }],
    parameters: { max_tokens: 16 },
  };
}

/** Starts `hfq board` as a real process and waits for its "board ready" line; `url` is where it listens. */
export async function startBoardProcess(
  env: Record<string, string>,
): Promise<{ proc: HfqProcess; url: string }> {
  const proc = HfqProcess.start(['board'], { HFQ_BOARD_PORT: '0', HFQ_BOARD_HOST: '127.0.0.1', ...env });
  const line = await proc.waitForLine((l) => l.includes('"board ready"'), 60_000);
  return { proc, url: String((JSON.parse(line) as { url: string }).url) };
}

/** The port a worker process logged in its "worker ready" line (HFQ_METRICS_PORT=0 picks one). */
export function metricsPortOf(proc: HfqProcess): number {
  const ready = proc.events().find((e) => e.msg === 'worker ready');
  if (typeof ready?.metricsPort !== 'number') throw new Error('no metricsPort in the "worker ready" line');
  return ready.metricsPort;
}

/** Values of every sample `name{labels…}` of the exposition text, labels matched as a subset. */
function samples(text: string, name: string, labels: Record<string, string>): number[] {
  const values: number[] = [];
  for (const line of text.split('\n')) {
    const match = /^([^{\s]+)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) values.push(Number(match[3]));
  }
  return values;
}

/** The first matching sample's value. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  return samples(text, name, labels)[0];
}

/** The sum of the matching samples (a counter over every account, say). */
export function sampleSum(text: string, name: string, labels: Record<string, string> = {}): number {
  return samples(text, name, labels).reduce((a, b) => a + b, 0);
}
