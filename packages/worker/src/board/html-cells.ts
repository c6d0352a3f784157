/** The status page's small HTML helpers, shared by its tables. */

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Estimates per request are fractions of a cent: show enough digits to see them. */
export function money(usd: number): string {
  if (usd === 0) return '$0';
  if (usd >= 1) return `$${usd.toFixed(2)}`;
  if (usd >= 0.01) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(6)}`;
}

/**
 * Each cell names its column (`data-label`): on a narrow screen the tables are laid out as one
 * block per row, each cell under its label, so that nothing is wider than the screen.
 */
export function labelled(cells: string[], labels: readonly string[]): string[] {
  return cells.map((cell, i) =>
    cell.replace(/^<(td|th)\b/, `<$1 data-label="${escapeHtml(labels[i] ?? '')}"`),
  );
}
