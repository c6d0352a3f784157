import type { RequestHandler, Response } from 'express';

/**
 * Guards in front of Bull Board's API. Bull Board's own `readOnlyMode` answers 405 on the
 * per-queue write routes, but its "pause all" and "resume all" answer 200 (doing nothing), and
 * a future route might forget the check: so read-only mode here refuses every method but GET
 * and HEAD before Bull Board sees the request.
 */

const READS = new Set(['GET', 'HEAD']);

function refuse(res: Response, message: string): void {
  res.set('Allow', 'GET, HEAD').status(405).json({ error: 'Method Not Allowed', message });
}

/** `HFQ_BOARD_READ_ONLY=true`: 405 on every write, whatever the route. */
export function readOnlyGuard(): RequestHandler {
  return (req, res, next) => {
    if (READS.has(req.method)) {
      next();
      return;
    }
    refuse(res, 'the board is read-only (HFQ_BOARD_READ_ONLY=true)');
  };
}

const RATE_LIMIT_ROUTE = /^\/api\/queues\/[^/]+\/rate-limit(?:\/release)?\/?$/;

/**
 * hfq owns the queues' rate limits, so the board may read them but never write them, even when
 * it is not read-only:
 *
 * - "set rate limit" would edit the BullMQ global limit that a worker sets from the config at a
 *   lane's first wait, and keeps at the config from then on (lane-queue-limit.ts): it is a coarse
 *   outer bound, not the limit that protects the upstream, and a change from the board would
 *   silently disagree with config.
 * - "release" calls `removeRateLimitKey()`, ending a pause set with `queue.rateLimit()`. It
 *   cannot undo a 429 pause (the domain's pause lives in hfq's precise limiter in Redis, and a
 *   job released early only meets that pause again and goes back to wait, see
 *   test/ops-board.test.ts), but it turns a quiet pause into a burst of fetches and re-queues.
 */
export function rateLimitWriteGuard(): RequestHandler {
  return (req, res, next) => {
    if (READS.has(req.method) || !RATE_LIMIT_ROUTE.test(req.path)) {
      next();
      return;
    }
    refuse(
      res,
      "hfq manages the queues' rate limits (per-domain limiter in Redis); change them in the account config",
    );
  };
}
