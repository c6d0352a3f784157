import { createReadStream, type Stats } from 'node:fs';
import { type FileHandle, open, realpath, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UsageError } from './usage.js';

/**
 * The `--out` file of `hfq enqueue`: results in input order, one JSON line each, so the file always
 * holds the results of a prefix of the input. A re-run reads what it holds (dropping a last line
 * cut short by a crash), keeps it, and appends only the rest. `sync()` makes what was written
 * durable (fsync); a batch's results leave Redis only after it (see docs/architecture.md, "Batches are flows").
 */
export class ResultsFile {
  private buffer = '';

  private constructor(
    private readonly handle: FileHandle,
    /** Input line numbers of the results the file held when opened, in order. */
    readonly heldLines: number[],
    /** How many of those were failures. */
    readonly heldFailed: number,
  ) {}

  /**
   * Check `path` against the input and open it for appending. Refuses (a `UsageError`) a path that is
   * the input itself, a folder that does not exist, and a file that holds something other than results.
   */
  static async open(path: string, input: string, usage: string): Promise<ResultsFile> {
    await refuseUnusable(path, input, usage);
    const { heldLines, heldFailed, validBytes } = await readHeld(path, usage);
    const handle = await open(path, 'a+');
    try {
      // A last line cut short by a crash goes; the results before it stay.
      if ((await handle.stat()).size > validBytes) await handle.truncate(validBytes);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return new ResultsFile(handle, heldLines, heldFailed);
  }

  /** Append one result line (buffered; `sync()` writes and flushes it). */
  async append(value: unknown): Promise<void> {
    this.buffer += `${JSON.stringify(value)}\n`;
    if (this.buffer.length >= 256 * 1024) await this.write();
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

  private async write(): Promise<void> {
    if (this.buffer === '') return;
    const text = this.buffer;
    this.buffer = '';
    await this.handle.write(text);
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

/** The results a file holds: their line numbers, failures, and where the last complete line ends. */
async function readHeld(path: string, usage: string) {
  const heldLines: number[] = [];
  let heldFailed = 0;
  let validBytes = 0;
  let offset = 0;
  let rest = Buffer.alloc(0);
  let fileLine = 0;
  try {
    for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
      let data = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
      let start = 0;
      for (;;) {
        const nl = data.indexOf(10, start);
        if (nl === -1) break;
        fileLine++;
        const entry = parseResult(data.subarray(start, nl).toString('utf8'));
        if (!entry) {
          throw new UsageError(
            `--out ${path} holds something other than hfq enqueue results (its line ${fileLine}); choose another file`,
            usage,
          );
        }
        heldLines.push(entry.line);
        if (!entry.ok) heldFailed++;
        offset += nl + 1 - start;
        validBytes = offset;
        start = nl + 1;
      }
      rest = Buffer.from(data.subarray(start));
      data = rest;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { heldLines, heldFailed, validBytes: 0 };
    throw err;
  }
  return { heldLines, heldFailed, validBytes };
}

function parseResult(text: string): { line: number; ok: boolean } | undefined {
  try {
    const value = JSON.parse(text) as { line?: unknown; ok?: unknown };
    if (typeof value?.line === 'number' && typeof value.ok === 'boolean')
      return { line: value.line, ok: value.ok };
  } catch {}
  return undefined;
}
