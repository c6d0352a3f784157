import type { GateStatus } from '@hfq/shared/internal';
import type { AccountRunState, Admin } from '@hfq/worker';
import type { Progress } from './progress.js';

/**
 * What holds a run's jobs back, at the end of the progress line: `held: credits out`, `held:
 * provider key revoked`, `paused 3 s (Retry-After)`, `paused (hfq queue resume acme)` (an
 * operator), `no live worker serves acme`, and for a lane other than the router's, which lane
 * and why (`lane endpoint.emb held: …`). Read with
 * `Admin.runStates`, the reading `hfq status` makes, every few seconds while the run waits.
 */

/** How often the note is read again. */
export const NOTE_EVERY_MS = 2_000;

/**
 * The note for some accounts' states ('' when nothing holds them back); accounts named when
 * several. `unserved`: accounts no live worker serves (as `hfq status` reads the heartbeats).
 */
export function progressNote(states: readonly AccountRunState[], unserved: readonly string[] = []): string {
  const idle = unserved.map((a) => `no live worker serves ${a} (a mistyped account? see hfq status)`);
  const notes = states.flatMap((s) => {
    const note = accountNote(s);
    if (!note) return [];
    return [states.length > 1 ? `${s.account} ${note}` : note];
  });
  return [...idle, ...notes].join('; ');
}

function accountNote(s: AccountRunState): string {
  return [routerLaneNote(s), ...laneNotes(s)].filter(Boolean).join('; ');
}

/**
 * The account's other lanes (see docs/architecture.md, "Every route its own lane"), each named:
 * `lane endpoint.emb held: endpoint emb unavailable …`, `lane router.together paused 3 s (Retry-After)`.
 */
function laneNotes(s: AccountRunState): string[] {
  return (s.lanes ?? []).flatMap((lane) => {
    if (lane.lane === 'router') return [];
    if (lane.holdReason !== undefined) return [`lane ${lane.lane} held: ${shortReason(lane.holdReason)}`];
    if (lane.paused) return [`lane ${lane.lane} paused`];
    if (lane.pausedForMs > 0)
      return [`lane ${lane.lane} paused ${Math.ceil(lane.pausedForMs / 1000)} s (Retry-After)`];
    return [];
  });
}

/** The router lane (the account queue): held, paused, or the router's stated wait. */
function routerLaneNote(s: AccountRunState): string {
  const keys = keyNotes(s.keys);
  const router = routerNote(s.credits);
  if (s.holdReason !== undefined || s.paused) {
    const why = [router, ...keys].filter(Boolean);
    if (why.length > 0) return `held: ${why.join(', ')}`;
    if (s.holdReason !== undefined) return `held: ${shortReason(s.holdReason)}`;
    // Paused with no reason of hfq's: an operator's pause (a worker resumes any other).
    return `paused (hfq queue resume ${s.account})`;
  }
  const notes: string[] = [];
  if (s.pausedForMs > 0) notes.push(`paused ${Math.ceil(s.pausedForMs / 1000)} s (Retry-After)`);
  // Not held: the router is closed but provider keys carry the jobs.
  if (router) notes.push(`${router}: via provider keys`);
  return notes.join(', ');
}

function routerNote(gate: GateStatus): string {
  if (gate.state === 'exhausted') return 'credits out';
  if (gate.state === 'held') return 'HF token refused';
  return '';
}

function keyNotes(keys: AccountRunState['keys']): string[] {
  const revoked = keys.filter((k) => k.credits.state === 'held').map((k) => k.provider);
  const out = keys.filter((k) => k.credits.state === 'exhausted').map((k) => k.provider);
  const notes: string[] = [];
  if (revoked.length === 1) notes.push('provider key revoked');
  else if (revoked.length > 1) notes.push(`${revoked.length} provider keys revoked`);
  if (out.length > 0) notes.push(`provider key${out.length > 1 ? 's' : ''} out of credits`);
  return notes;
}

/** A hold reason's first clause, at most 60 characters (the full reason is in `hfq status`). */
function shortReason(reason: string): string {
  const first = reason.split(';')[0]?.trim() ?? reason;
  return first.length > 60 ? `${first.slice(0, 57)}…` : first;
}

/**
 * Keep the progress line's note current for the accounts `accounts()` names until the returned
 * function is called. A failed read leaves the note as it is (progress only).
 */
export function watchRunState(admin: Admin, accounts: () => string[], progress: Progress): () => void {
  let reading = false;
  const timer = setInterval(() => {
    if (reading) return;
    const ids = accounts().slice(0, 20);
    if (ids.length === 0) return;
    reading = true;
    void Promise.all([admin.runStates(ids), admin.workers()])
      .then(([states, workers]) => {
        const served = new Set(workers.filter((w) => w.live).flatMap((w) => w.accounts));
        progress.setNote(
          progressNote(
            states,
            ids.filter((id) => !served.has(id)),
          ),
        );
      })
      .catch(() => {})
      .finally(() => {
        reading = false;
      });
  }, NOTE_EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
