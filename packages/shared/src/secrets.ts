/**
 * Secrets (HF tokens, provider keys, the board password) never reach job data, results, logs,
 * errors or the board. Two defences: pino redacts known fields by path (see `logger.ts`), and
 * every text that leaves a worker (failedReason, messages) goes through `scrubSecrets`.
 */

const HF_TOKEN_PATTERN = /\bhf_[A-Za-z0-9_]{6,}\b/g;
const BEARER_PATTERN = /\b(Bearer\s+)[^\s"',;]+/gi;
/** `scheme://user:password@` (or `scheme://token@`): the user-info part of any URL in a text. */
const URL_USERINFO_PATTERN = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'<>]*@/gi;

/**
 * Replace the user-info of every URL in a text (`redis://:pw@host` → `redis://***@host`), so a
 * `REDIS_URL` with a password can be named in an error or a log line without its password.
 */
export function maskUrlCredentials(text: string): string {
  return text.replace(URL_USERINFO_PATTERN, '$1***@');
}

/** Replace every known secret, every `hf_…` token and every bearer credential with `[redacted]`. */
export function scrubSecrets(text: string, known: Iterable<string> = []): string {
  let out = text;
  for (const secret of known) {
    if (secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  return maskUrlCredentials(
    out.replace(HF_TOKEN_PATTERN, '[redacted]').replace(BEARER_PATTERN, '$1[redacted]'),
  );
}

/** A short, stable, non-reversible name for a credential: what Redis keys and metrics use instead of it. */
export async function credentialId(secret: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(`hfq:${secret}`).digest('hex').slice(0, 16);
}
