/**
 * No import cycles inside a package, type-only ones included: a cycle means a type lives in the
 * wrong module (it belongs with the module that owns it). Static imports and re-exports count,
 * `import type` too; a lazy `await import()` (the CLI's commands) does not. Reads the sources
 * with the TypeScript parser; needs nothing else.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const PACKAGES = ['shared', 'producer', 'worker', 'cli', 'sim'];

/** Cycles still allowed, each as the set of its files (none now). Keep it empty. */
const ALLOWED: readonly (readonly string[])[] = [];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

/** The relative modules a file imports or re-exports, statically. */
function importsOf(file: string, text: string, exists: (path: string) => boolean = existsSync): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest);
  return source.statements.flatMap((statement) => {
    if (!ts.isImportDeclaration(statement) && !ts.isExportDeclaration(statement)) return [];
    const specifier = statement.moduleSpecifier;
    if (!specifier || !ts.isStringLiteral(specifier) || !specifier.text.startsWith('.')) return [];
    const target = resolve(dirname(file), specifier.text.replace(/\.js$/, '.ts'));
    return exists(target) ? [target] : [];
  });
}

/** Strongly connected components of more than one module (and modules importing themselves): the cycles. */
function cyclesOf(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    for (;;) {
      const w = stack.pop() as string;
      onStack.delete(w);
      component.push(w);
      if (w === v) break;
    }
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

describe('import cycles', () => {
  it('finds a cycle, type-only ones included, and not a chain (the checker can fail)', () => {
    const files: Record<string, string> = {
      '/p/a.ts': "import type { B } from './b.js';\nexport type A = B;",
      '/p/b.ts': "import { c } from './c.js';\nexport type B = string;",
      '/p/c.ts': "export type { A } from './a.js';\nexport const c = 1;",
      '/p/d.ts': "import { c } from './c.js';",
    };
    const graph = new Map(
      Object.entries(files).map(([file, text]) => [file, importsOf(file, text, (path) => path in files)]),
    );
    expect(cyclesOf(graph)).toEqual([['/p/a.ts', '/p/b.ts', '/p/c.ts']]);
    graph.set('/p/c.ts', []);
    expect(cyclesOf(graph)).toEqual([]);
  });

  it('no package has one', () => {
    const files = PACKAGES.flatMap((name) => sourceFiles(join(ROOT, 'packages', name, 'src')));
    expect(files.length).toBeGreaterThan(100);
    const graph = new Map(files.map((file) => [file, importsOf(file, readFileSync(file, 'utf8'))]));
    const cycles = cyclesOf(graph).map((cycle) => cycle.map((file) => relative(ROOT, file)));
    const allowed = (cycle: string[]) => ALLOWED.some((set) => cycle.every((file) => set.includes(file)));
    expect(cycles.filter((cycle) => !allowed(cycle))).toEqual([]);
  });
});
