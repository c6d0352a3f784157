/** Number and table formatting shared by the benchmarks' markdown output. */

/** `n` with exactly `digits` decimals and thousands separators. */
export function fixed(n: number, digits = 1): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function integer(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** A share (0..1) as a percentage. */
export function percent(share: number, digits = 1): string {
  return `${fixed(share * 100, digits)}%`;
}

/** Milliseconds as seconds, or an em dash for a missing value. */
export function seconds(ms: number | null | undefined, digits = 1): string {
  return ms === null || ms === undefined ? '—' : `${fixed(ms / 1000, digits)} s`;
}

/** A markdown table; `align` per column: 'l' or 'r' (default 'r'). */
export function markdownTable(header: string[], rows: string[][], align: ('l' | 'r')[] = []): string {
  const rule = header.map((_, i) => ((align[i] ?? 'r') === 'l' ? '---' : '---:'));
  const line = (cells: string[]) => `| ${cells.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(header), `| ${rule.join(' | ')} |`, ...rows.map(line)].join('\n');
}
