import { createReadStream } from 'node:fs';

/**
 * The lines of a JSONL input, read as bytes: a line that is not valid UTF-8 is reported with its
 * number instead of being altered (a text stream would replace its bytes with U+FFFD), and a line
 * longer than `maxLineBytes` is reported without being held in memory.
 */

export type InputLine =
  | { lineNo: number; text: string; problem?: undefined }
  | { lineNo: number; text?: undefined; problem: string };

/** Far above any job hfq accepts (512 KB), far below what would exhaust memory. */
export const MAX_LINE_BYTES = 8 * 1024 * 1024;

export async function* readInputLines(
  path: string,
  maxLineBytes = MAX_LINE_BYTES,
): AsyncGenerator<InputLine> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let parts: Buffer[] = [];
  let length = 0;
  let tooLong = false;
  let lineNo = 0;
  const finish = (): InputLine | undefined => {
    lineNo++;
    const bytes = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, length);
    const wasTooLong = tooLong;
    parts = [];
    length = 0;
    tooLong = false;
    if (wasTooLong) return { lineNo, problem: `longer than ${maxLineBytes / 1024 / 1024} MB` };
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      return { lineNo, problem: 'not valid UTF-8 text' };
    }
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (lineNo === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    return text.trim() === '' ? undefined : { lineNo, text };
  };
  const append = (chunk: Buffer) => {
    if (tooLong) return;
    if (length + chunk.length > maxLineBytes) {
      tooLong = true;
      parts = [];
      length = 0;
      return;
    }
    parts.push(chunk);
    length += chunk.length;
  };
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl === -1) break;
      append(chunk.subarray(start, nl));
      const line = finish();
      if (line) yield line;
      start = nl + 1;
    }
    if (start < chunk.length) append(chunk.subarray(start));
  }
  if (length > 0 || tooLong) {
    const line = finish();
    if (line) yield line;
  }
}
