import type { Caller } from '../auth.js';
import { sendFault } from '../faults.js';
import type { Reply } from '../http/reply.js';
import type { FaultKind } from '../recorder.js';
import type { SimState } from '../state.js';
import type { Exchange } from './exchange.js';

/** Answer with a fault and note it on the record (a hang also counts as hanging until it ends). */
export async function answerFault(
  state: SimState,
  exchange: Exchange,
  kind: FaultKind,
  caller: Caller,
  model: string,
  success: Reply | null,
): Promise<void> {
  // A client that already left has been recorded; nothing to answer or count.
  if (exchange.res.destroyed) return;
  exchange.record.fault = kind;
  if (kind === 'hang') state.recorder.hangStarted();
  await sendFault(kind, exchange.res, {
    faults: state.faultsFor(caller),
    model,
    success,
    headers: exchange.headers,
  });
}
