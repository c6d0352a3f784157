import { createReadStream, type Stats } from 'node:fs';
import { type FileHandle, open, realpath, rename, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UsageError } from './usage.js';

/**
 * The `--out` file of `hfq enqueue`: one JSON row per input line, each with the line's number and
 * its input hash (see docs/architecture.md, "The CLI resumes by content"). Rows are appended as
 * jobs finish and reach the file within a second (`FLUSH_MS`, or sooner past `FLUSH_BYTES`); a run
 * that asked for input order rewrites the file in line order at its end. A re-run reads the rows
 * the file holds (dropping a last line cut short by a crash), keeps those whose input is
 * unchanged (`keep`: one atomic rewrite) and adds the rest. `sync()` makes what was written
 * durable (fsync); a batch's results leave Redis only after it (docs/architecture.md, "Batches are flows").
 */

/** A buffered row is written at most this long after it was appended. */
export const FLUSH_MS = 500;
/** …or at once when this much is buffered. */
const FLUSH_BYTES = 256 * 1024;

/** A row the file holds: its line, input hash, outcome, and where it is. */
export interface HeldRow {
  line: number;
  /** Rows written before input hashes (or by hand) have none: they match no line. */
  hash: string | undefined;
  ok: boolean;
  /** The batch that wrote the row (--batch). */
  batch: string | undefined;
  offset: number;
  length: number;
}

export class ResultsFile {
  private buffer = '';
  private timer: NodeJS.Timeout | undefined;
  /** Writes run one after another. */
  private writing: Promise<void> = Promise.resolve();
  private lastLine = 0;
  /** Rows were appended out of line order since the last rewrite. */
  private unordered = false;

  private constructor(
    readonly path: string,
    private handle: FileHandle,
    /** The rows the file held when opened (until `keep` rewrites it). */
    readonly held: HeldRow[],
  ) {}

  /**
   * Check `path` against the input and open it for appending. Refuses (a `UsageError`) a path that is
   * the input itself, a folder that does not exist, and a file that holds something other than results.
   */
  static async open(path: string, input: string, usage: string): Promise<ResultsFile> {
    await refuseUnusable(path, input, usage);
    const { rows, validBytes } = await readRows(path, usage);
    const handle = await open(path, 'a+');
    try {
      // A last line cut short by a crash goes; the rows before it stay.
      if ((await handle.stat()).size > validBytes) await handle.truncate(validBytes);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return new ResultsFile(path, handle, rows);
  }

  /**
   * Keep only `rows` (held rows, each with the line number it now has), in that order: written to
   * a file beside this one, made durable, then renamed over it, so a crash leaves one or the other.
   */
  async keep(rows: readonly { row: HeldRow; line: number }[]): Promise<void> {
    await this.sync();
    const tmp = `${this.path}.hfq-tmp`;
    const out = await open(tmp, 'w');
    try {
      let chunk = '';
      for (const { row, line } of rows) {
        const buf = Buffer.alloc(row.length);
        await this.handle.read(buf, 0, row.length, row.offset);
        let text = buf.toString('utf8');
        if (line !== row.line) text = JSON.stringify({ ...JSON.parse(text), line });
        chunk += `${text}\n`;
        if (chunk.length >= FLUSH_BYTES) {
          await out.write(chunk);
          chunk = '';
        }
      }
      if (chunk) await out.write(chunk);
      await out.datasync();
    } finally {
      await out.close();
    }
    await this.handle.close();
    await rename(tmp, this.path);
    this.handle = await open(this.path, 'a+');
    this.lastLine = rows.reduce((max, r) => Math.max(max, r.line), 0);
    this.unordered = rows.some((r, i) => i > 0 && r.line < (rows[i - 1]?.line ?? 0));
  }

  /** Append one row (buffered: on disk within `FLUSH_MS`). */
  async append(value: { line: number } & Record<string, unknown>): Promise<void> {
    if (value.line < this.lastLine) this.unordered = true;
    this.lastLine = Math.max(this.lastLine, value.line);
    this.buffer += `${JSON.stringify(value)}\n`;
    if (this.buffer.length >= FLUSH_BYTES) await this.write();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.write().catch(() => {});
      }, FLUSH_MS);
      this.timer.unref();
    }
  }

  /** The rows are in line order now (nothing to sort). */
  get ordered(): boolean {
    return !this.unordered;
  }

  /** Rewrite the file in line order (atomically, as `keep` does). */
  async sortByLine(usage: string): Promise<void> {
    if (!this.unordered) return;
    await this.sync();
    const { rows } = await readRows(this.path, usage);
    const sorted = [...rows].sort((a, b) => a.line - b.line);
    await this.keep(sorted.map((row) => ({ row, line: row.line })));
  }

  /** Everything appended so far is on disk (fsync) when this resolves. */
  async sync(): Promise<void> {
    await this.write();
    await this.handle.datasync();
  }

  async close(): Promise<void> {
    try {
      await this.sync();
    } finally {
      await this.handle.close();
    }
  }

  private write(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const text = this.buffer;
    this.buffer = '';
    this.writing = this.writing.then(async () => {
      if (text !== '') await this.handle.write(text);
    });
    return this.writing;
  }
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function refuseUnusable(path: string, input: string, usage: string): Promise<void> {
  const folder = dirname(resolve(path));
  const folderStat = await statOrUndefined(folder);
  if (!folderStat?.isDirectory())
    throw new UsageError(`--out ${path}: folder ${folder} does not exist`, usage);
  const [outStat, inStat] = await Promise.all([statOrUndefined(path), statOrUndefined(input)]);
  const sameInode = outStat && inStat && outStat.dev === inStat.dev && outStat.ino === inStat.ino;
  const samePath = inStat && resolve(path) === (await realpath(input).catch(() => resolve(input)));
  if (sameInode || samePath) {
    throw new UsageError(`--out ${path} is the input file: results would overwrite the jobs`, usage);
  }
  if (outStat?.isDirectory()) throw new UsageError(`--out ${path} is a folder, not a file`, usage);
}

/** The rows a file holds and where the last complete line ends. */
async function readRows(path: string, usage: string) {
  const rows: HeldRow[] = [];
  let validBytes = 0;
  let rest = Buffer.alloc(0);
  let fileLine = 0;
  try {
    for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
      const data = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
      let start = 0;
      for (;;) {
        const nl = data.indexOf(10, start);
        if (nl === -1) break;
        fileLine++;
        const entry = parseRow(data.subarray(start, nl).toString('utf8'));
        if (!entry) {
          throw new UsageError(
            `--out ${path} holds something other than hfq enqueue results (its line ${fileLine}); choose another file`,
            usage,
          );
        }
        rows.push({ ...entry, offset: validBytes, length: nl - start });
        validBytes += nl + 1 - start;
        start = nl + 1;
      }
      rest = Buffer.from(data.subarray(start));
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { rows, validBytes: 0 };
    throw err;
  }
  return { rows, validBytes };
}

function parseRow(text: string): Omit<HeldRow, 'offset' | 'length'> | undefined {
  try {
    const value = JSON.parse(text) as { line?: unknown; ok?: unknown; input_hash?: unknown; batch?: unknown };
    if (typeof value?.line === 'number' && typeof value.ok === 'boolean')
      return {
        line: value.line,
        ok: value.ok,
        hash: typeof value.input_hash === 'string' ? value.input_hash : undefined,
        batch: typeof value.batch === 'string' ? value.batch : undefined,
      };
  } catch {}
  return undefined;
}

/** The rows `path` holds, read without opening it for writing (`--dry-run`). */
export async function readHeldRows(path: string, input: string, usage: string): Promise<HeldRow[]> {
  await refuseUnusable(path, input, usage);
  return (await readRows(path, usage)).rows;
}
