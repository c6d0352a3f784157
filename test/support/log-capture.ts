import { Writable } from 'node:stream';
import { createLogger, type Logger } from '@hfq/shared';

/** One pino line as JSON. */
export type LogLine = Record<string, unknown> & { level: number; msg: string };

/** pino's numeric levels. */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/**
 * A real hfq logger (createLogger, redaction and masking included) writing into memory: the
 * lines a process would print, parsed, for assertions on what an operator reads.
 */
export function captureLogs(level = 'debug'): {
  logger: Logger;
  lines: LogLine[];
  matching: (msg: RegExp) => LogLine[];
  text: () => string;
} {
  const lines: LogLine[] = [];
  let raw = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      raw += chunk.toString('utf8');
      for (;;) {
        const end = raw.indexOf('\n');
        if (end < 0) break;
        const line = raw.slice(0, end);
        raw = raw.slice(end + 1);
        if (line.trim()) lines.push(JSON.parse(line) as LogLine);
      }
      callback();
    },
  });
  return {
    logger: createLogger({ destination, level, name: 'test' }),
    lines,
    matching: (msg) => lines.filter((l) => msg.test(l.msg)),
    text: () => lines.map((l) => JSON.stringify(l)).join('\n'),
  };
}
