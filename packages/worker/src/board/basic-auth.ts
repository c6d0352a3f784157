import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';

/** The board's credentials (`HFQ_BOARD_USER`, `HFQ_BOARD_PASSWORD`). */
export interface BasicCredentials {
  user: string;
  password: string;
}

const REALM = 'Basic realm="hfq board", charset="UTF-8"';

/**
 * Compares in constant time whatever the lengths: both sides are hashed to 32 bytes first, so
 * neither the content nor the length of the expected value leaks through timing.
 */
export function constantTimeEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** `Authorization: Basic …` → user and password, or undefined when absent or malformed. */
export function parseBasicAuth(header: string | undefined): BasicCredentials | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * HTTP basic auth in front of everything it guards: 401 with a `WWW-Authenticate` challenge
 * unless the user and password both match. Both are compared every time (no early exit on a
 * wrong user), each in constant time.
 */
export function basicAuth(credentials: BasicCredentials): RequestHandler {
  return (req, res, next) => {
    const given = parseBasicAuth(req.headers.authorization);
    const userOk = constantTimeEqual(given?.user ?? '', credentials.user);
    const passwordOk = constantTimeEqual(given?.password ?? '', credentials.password);
    if (given && userOk && passwordOk) {
      next();
      return;
    }
    res
      .set('WWW-Authenticate', REALM)
      .set('Cache-Control', 'no-store')
      .status(401)
      .type('text/plain')
      .send('authentication required\n');
  };
}
