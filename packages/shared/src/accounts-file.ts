import type { z } from 'zod';
import { ACCOUNT_CONFIG, ACCOUNTS, type AccountConfig } from './account-schema.js';
import { ConfigError } from './config-error.js';
import { didYouMean } from './did-you-mean.js';
import { locateJsonPath, syntaxErrorLocation, type TextLocation } from './json-locate.js';
import { misspeltProvider } from './provider-names.js';

/**
 * `HFQ_ACCOUNTS_FILE`: a JSON array of accounts, checked against the account schema. Each error
 * says where in the file (line and column), which field, and for a misspelt key or provider name
 * the one it most likely stands for. See README, "Configuration".
 */

const VARIABLE = 'HFQ_ACCOUNTS_FILE';
/** Errors shown at once; the rest are counted. */
const SHOWN_ISSUES = 5;

interface ZodDef {
  type: string;
  shape?: Record<string, { _zod: { def: ZodDef } }>;
  element?: { _zod: { def: ZodDef } };
  options?: { _zod: { def: ZodDef } }[];
  innerType?: { _zod: { def: ZodDef } };
  valueType?: { _zod: { def: ZodDef } };
  in?: { _zod: { def: ZodDef } };
  out?: { _zod: { def: ZodDef } };
}

/** Every key name an object anywhere in the schema takes: the candidates for "did you mean". */
function fieldNames(def: ZodDef, into = new Set<string>()): Set<string> {
  if (def.shape) {
    for (const [name, child] of Object.entries(def.shape)) {
      into.add(name);
      fieldNames(child._zod.def, into);
    }
  }
  for (const child of [def.element, def.innerType, def.valueType, def.in, def.out, ...(def.options ?? [])])
    if (child) fieldNames(child._zod.def, into);
  return into;
}

const FIELD_NAMES = fieldNames((ACCOUNT_CONFIG as unknown as { _zod: { def: ZodDef } })._zod.def);

function where(file: string, at: TextLocation | undefined): string {
  return at ? `${file} line ${at.line}, column ${at.column}` : file;
}

function fieldPath(path: readonly PropertyKey[]): string {
  return path
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
    .join('')
    .replace(/^\./, '');
}

function fail(problems: string[]): never {
  const more = problems.length > SHOWN_ISSUES ? `; and ${problems.length - SHOWN_ISSUES} more` : '';
  throw new ConfigError(VARIABLE, `${problems.slice(0, SHOWN_ISSUES).join('; ')}${more}`);
}

/** A misspelt provider name in `providerKeys` or `fallbackProviders`, located in the file. */
function providerProblems(file: string, text: string, accounts: unknown): string[] {
  const problems: string[] = [];
  if (!Array.isArray(accounts)) return problems;
  accounts.forEach((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null) return;
    const account = entry as { providerKeys?: unknown; fallbackProviders?: unknown };
    const keys =
      typeof account.providerKeys === 'object' && account.providerKeys !== null ? account.providerKeys : {};
    const fallbacks = Array.isArray(account.fallbackProviders) ? account.fallbackProviders : [];
    for (const name of Object.keys(keys)) {
      const meant = misspeltProvider(name);
      if (meant)
        problems.push(
          `${where(file, locateJsonPath(text, [i, 'providerKeys'], name))}: [${i}].providerKeys: unknown provider "${name}" (did you mean "${meant}"?)`,
        );
    }
    fallbacks.forEach((name: unknown, j) => {
      const meant = typeof name === 'string' ? misspeltProvider(name) : undefined;
      if (meant)
        problems.push(
          `${where(file, locateJsonPath(text, [i, 'fallbackProviders', j]))}: [${i}].fallbackProviders[${j}]: unknown provider "${name}" (did you mean "${meant}"?)`,
        );
    });
  });
  return problems;
}

type Issue = z.core.$ZodIssue;

/**
 * A union's failure ("Invalid input") replaced by the issues of its closest option (a limit
 * window with a misspelt `durationMS` is a request window with an unknown key), paths made whole.
 */
function closestIssues(issues: readonly Issue[]): Issue[] {
  return issues.flatMap((issue) => {
    if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [issue];
    const best = [...issue.errors].sort((a, b) => a.length - b.length)[0] ?? [];
    return closestIssues(best.map((sub) => ({ ...sub, path: [...issue.path, ...sub.path] }) as Issue));
  });
}

/** The accounts in `text` (read from `file`), or a `ConfigError` naming every problem with its place. */
export function parseAccountsFile(file: string, text: string): AccountConfig[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    const message = (err as Error).message;
    throw new ConfigError(
      VARIABLE,
      `${where(file, syntaxErrorLocation(text, message))}: not valid JSON (${message.split('\n')[0]})`,
    );
  }
  const parsed = ACCOUNTS.safeParse(raw);
  if (!parsed.success) {
    const problems: string[] = [];
    for (const issue of closestIssues(parsed.error.issues)) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          const at = locateJsonPath(text, issue.path, key);
          const field = fieldPath([...issue.path, key]);
          problems.push(`${where(file, at)}: ${field}: unknown key${didYouMean(key, FIELD_NAMES)}`);
        }
        continue;
      }
      const at = locateJsonPath(text, issue.path) ?? locateJsonPath(text, issue.path.slice(0, -1));
      problems.push(`${where(file, at)}: ${fieldPath(issue.path) || '(root)'}: ${issue.message}`);
    }
    // A misspelt provider first: it also fails the check that each fallback has a key.
    fail([...providerProblems(file, text, raw), ...problems]);
  }
  const misspelt = providerProblems(file, text, parsed.data);
  if (misspelt.length > 0) fail(misspelt);
  return parsed.data;
}

/** The same check for the one-account variables: `HFQ_PROVIDER_KEYS`, `HFQ_FALLBACK_PROVIDERS`. */
export function checkProviderVariables(account: {
  providerKeys?: Record<string, unknown> | undefined;
  fallbackProviders?: readonly string[] | undefined;
}): void {
  for (const name of Object.keys(account.providerKeys ?? {})) {
    const meant = misspeltProvider(name);
    if (meant)
      throw new ConfigError('HFQ_PROVIDER_KEYS', `unknown provider "${name}" (did you mean "${meant}"?)`);
  }
  for (const name of account.fallbackProviders ?? []) {
    const meant = misspeltProvider(name);
    if (meant)
      throw new ConfigError(
        'HFQ_FALLBACK_PROVIDERS',
        `unknown provider "${name}" (did you mean "${meant}"?)`,
      );
  }
}
