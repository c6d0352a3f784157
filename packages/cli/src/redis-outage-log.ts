import { Writable } from 'node:stream';
import { createLogger } from '@hfq/shared';
import { RedisErrorLog } from '@hfq/shared/internal';

/**
 * Redis trouble during a CLI run, as text lines a person reads (above the progress bar): each
 * condition once (`Redis connection error: connect ECONNREFUSED 127.0.0.1:6379`), then how often
 * it came back, and `Redis connection ready again (after 12 failed attempts)` (see
 * RedisErrorLog). Never a stack dump.
 */
export function cliRedisLog(print: (line: string) => void): RedisErrorLog {
  let pending = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      pending += chunk.toString('utf8');
      for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
        const text = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        print(lineOf(text));
      }
      done();
    },
  });
  return new RedisErrorLog(createLogger({ name: 'hfq', level: 'info', destination }));
}

function lineOf(json: string): string {
  try {
    const entry = JSON.parse(json) as { msg?: string; err?: string; errors?: number };
    const count = entry.errors
      ? ` (after ${entry.errors} failed attempt${entry.errors === 1 ? '' : 's'})`
      : '';
    return `hfq: ${entry.msg ?? ''}${entry.err ? `: ${entry.err}` : ''}${count}`;
  } catch {
    return json;
  }
}
