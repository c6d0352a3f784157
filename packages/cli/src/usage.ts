import { type ParseArgsConfig, parseArgs } from 'node:util';

export type CommandOptions = NonNullable<ParseArgsConfig['options']>;

/**
 * A command used the wrong way (an unknown flag, a missing or extra argument, a value out of
 * range, a file that cannot be used): `main` prints one line saying what is wrong, then the
 * command's usage, and exits 2. Never a stack trace.
 */
export class UsageError extends Error {
  readonly code = 'HFQ_USAGE';
  constructor(
    message: string,
    /** The command's usage text, printed after the message. */
    readonly usage: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface ParsedCommand<O extends CommandOptions> {
  values: { [K in keyof O]?: O[K]['type'] extends 'string' ? string : boolean };
  positionals: string[];
}

/**
 * `parseArgs` that reports mistakes as `UsageError`s: an unknown flag, a flag without its value,
 * a value given to a flag that takes none, and positionals beyond `positionals` names.
 */
export function parseCommand<O extends CommandOptions>(
  argv: string[],
  options: O,
  usage: string,
  positionals: readonly string[] = [],
): ParsedCommand<O> {
  let parsed: ParsedCommand<O>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true }) as ParsedCommand<O>;
  } catch (err) {
    throw new UsageError(parseArgsMessage(err as Error), usage);
  }
  if (parsed.positionals.length > positionals.length) {
    const extra = parsed.positionals[positionals.length];
    throw new UsageError(
      positionals.length === 0
        ? `unexpected argument "${extra}"`
        : `unexpected argument "${extra}" (takes only ${positionals.map((p) => `<${p}>`).join(' ')})`,
      usage,
    );
  }
  return parsed;
}

/** Node's parseArgs messages, shortened to what the user typed. */
function parseArgsMessage(err: Error): string {
  const code = (err as Error & { code?: string }).code;
  const flag = /'(-{1,2}[^' ]+)/.exec(err.message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${flag ?? ''}`.trim();
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    return /argument missing/.test(err.message)
      ? `option ${flag ?? ''} needs a value`.replace('  ', ' ')
      : `option ${flag ?? ''} takes no value`.replace('  ', ' ');
  }
  return err.message.split('\n')[0] ?? 'bad arguments';
}

/** A whole number option within bounds, or a `UsageError` naming the option. */
export function wholeOption(
  value: string | undefined,
  name: string,
  min: number,
  max: number,
  fallback: number,
  usage: string,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} takes a whole number from ${min} to ${max}, got "${value}"`, usage);
  }
  return n;
}
