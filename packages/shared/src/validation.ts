import type { z } from 'zod';

/** A value failed a schema. `issues` name each bad field by its path, e.g. `messages.0.role`. */
export class ValidationError extends Error {
  readonly code = 'HFQ_INVALID_INPUT';
  constructor(
    readonly what: string,
    readonly issues: ReadonlyArray<{ path: string; message: string }>,
  ) {
    super(`invalid ${what}: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`);
    this.name = 'ValidationError';
  }
}

/** Parse `value` or throw a `ValidationError` naming every bad field. Never throws anything else. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  let result: ReturnType<S['safeParse']>;
  try {
    result = schema.safeParse(value) as ReturnType<S['safeParse']>;
  } catch (err) {
    // Hostile input (getters that throw, cyclic structures) must still end as a validation error.
    throw new ValidationError(what, [{ path: '', message: `unreadable value (${(err as Error).message})` }]);
  }
  if (result.success) return result.data as z.output<S>;
  throw new ValidationError(
    what,
    result.error.issues.map((issue) => ({
      path: issue.path.map(String).join('.'),
      message: issue.message,
    })),
  );
}
