/**
 * Where a value or key sits in a JSON text, as line and column (both from 1), so that an error in
 * a hand-written file (the accounts file) points at the place to fix. A small scanner of JSON's
 * grammar that records positions only; the text is already known to be valid JSON.
 */

export interface TextLocation {
  line: number;
  column: number;
}

/** Line and column (from 1) of a character offset. */
export function lineColumn(text: string, offset: number): TextLocation {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lines = before.split('\n');
  return { line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1 };
}

/** Where `JSON.parse` stopped: Node 20 says "at position N", Node 22 also "(line L column C)". */
export function syntaxErrorLocation(text: string, message: string): TextLocation | undefined {
  const lc = /line (\d+) column (\d+)/.exec(message);
  if (lc) return { line: Number(lc[1]), column: Number(lc[2]) };
  const pos = /at position (\d+)/.exec(message);
  if (pos) return lineColumn(text, Number(pos[1]));
  if (/end of (JSON )?input/i.test(message)) return lineColumn(text, text.length);
  return undefined;
}

/**
 * Offset of the element at `path` (object keys and array indexes); with `key`, of that member's
 * key inside the object at `path` (an unknown key). Undefined when the path is not in the text.
 */
export function locateJsonPath(
  text: string,
  path: readonly PropertyKey[],
  key?: string,
): TextLocation | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i] as string)) i++;
  };
  const skipString = (): string => {
    const start = i;
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const skipValue = (): void => {
    ws();
    const c = text[i];
    if (c === '"') return void skipString();
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (text[i] === close) return void i++;
      for (;;) {
        if (c === '{') {
          ws();
          skipString();
          ws();
          i++; // ':'
        }
        skipValue();
        ws();
        if (text[i++] !== ',') return;
      }
    }
    while (i < text.length && !/[\s,\]}]/.test(text[i] as string)) i++;
  };
  /** Moves into the container at i to its member `step`; false when absent. */
  const enter = (step: PropertyKey, wantKey: boolean): boolean => {
    ws();
    const c = text[i];
    if (c === '[' && typeof step === 'number') {
      i++;
      for (let n = 0; ; n++) {
        ws();
        if (text[i] === ']') return false;
        if (n === step) return true;
        skipValue();
        ws();
        if (text[i++] !== ',') return false;
      }
    }
    if (c === '{') {
      i++;
      for (;;) {
        ws();
        if (text[i] !== '"') return false;
        const keyAt = i;
        const name = skipString();
        ws();
        i++; // ':'
        if (name === String(step)) {
          if (wantKey) i = keyAt;
          else ws();
          return true;
        }
        skipValue();
        ws();
        if (text[i++] !== ',') return false;
      }
    }
    return false;
  };
  try {
    for (const step of path) if (!enter(step, false)) return undefined;
    if (key !== undefined && !enter(key, true)) return undefined;
    ws();
    return lineColumn(text, i);
  } catch {
    return undefined;
  }
}
