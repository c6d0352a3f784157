/**
 * A change of a domain's learned rate, as the limiter scripts report it (det_changed in
 * lua/congestion-detector.lua): each script appends the changes it made to its reply, so the one
 * process whose call made a change learns of it, with the rate before and after and why.
 */

/** Why a domain's learned rate changed (see congestion-detector.ts). */
export type RateChangeReason =
  /** Congestion: a 429 episode cut the rate (only reported when the rate really went down). */
  | 'cut'
  /** A cut under test was noise: the rate went back to where it was. */
  | 'noise'
  /** A cut under test could not be told apart from noise by its longest test: undone. */
  | 'undecided'
  /** A cut after a blip near the limit was undone after two clean windows. */
  | 'recover'
  /** One additive step up after a quiet spell. */
  | 'raise'
  /** A doubling step back toward a rate that held before a cut. */
  | 'return'
  /** An operator set or cleared the override (`hfq limit`): the rate starts from the new limit. */
  | 'override';

export interface RateChange {
  domainId: string;
  reason: RateChangeReason;
  /** Learned rate before and after, requests per primary window. */
  fromRate: number;
  toRate: number;
  /**
   * `cut`: `tested` (put under test), `blip` (a first small share: given back after clean
   * windows), `wall` (nothing got through), `probe` (a raise went past the limit), `stated` (cut
   * to what got through before a stated wait), or ''; `raise`/`return`: `reached` when the rate
   * reached its target (the limit, or the rate that held); `override`: `set` or `cleared`;
   * `noise`/`undecided`: the evidence the domain's noise level now rests on, "429s/sends"
   * (decayed and capped, for example "16.0/80.0").
   */
  note: string;
}

/** The changes a script appended to its reply from index `from` on: groups of reason, rate before and after × 1000, note. */
export function rateChangesOf(
  domainId: string,
  reply: readonly (string | number)[],
  from: number,
): RateChange[] {
  const changes: RateChange[] = [];
  for (let i = from; i + 3 < reply.length; i += 4) {
    changes.push({
      domainId,
      reason: String(reply[i]) as RateChangeReason,
      fromRate: Number(reply[i + 1]) / 1000,
      toRate: Number(reply[i + 2]) / 1000,
      note: String(reply[i + 3] ?? ''),
    });
  }
  return changes;
}
