import type { Logger } from '@hfq/shared';
import type { RateChange } from '@hfq/shared/internal';

/**
 * One log line per change of a domain's learned rate, with the rate before and after and why
 * (see docs/architecture.md, "What a 429 means"). The scripts report each change once, to the
 * process whose permit or 429 made it, so a fleet logs each change once. A cut is a warning; a
 * rate given back (noise, an undecided test, a blip, a return to the limit) and an operator's
 * override are info; the single steps of a climb are debug (one a window while it lasts).
 */
export function rateChangeLogger(
  logger: Logger,
  /** The accounts of this process whose routes use the domain. */
  accountsOf: (domainId: string) => string[],
): (change: RateChange) => void {
  return (change) => {
    const { level, msg } = describe(change);
    const accounts = accountsOf(change.domainId);
    logger[level](
      {
        ...(accounts.length === 1 ? { account: accounts[0] } : { accounts }),
        domain: change.domainId,
        reason: change.reason,
        fromRate: round(change.fromRate),
        toRate: round(change.toRate),
        ...(change.note ? { note: change.note } : {}),
        ...noiseFields(change),
      },
      msg,
    );
  };
}

/** A noise verdict's log fields: the level learned and the evidence it rests on. */
function noiseFields(change: RateChange): Record<string, number> {
  if (change.reason !== 'noise' && change.reason !== 'undecided') return {};
  const e = noiseEvidence(change.note);
  return e
    ? {
        noiseLevel: Number(e.share.toFixed(4)),
        noise429s: Math.round(e.throttled),
        noiseSends: Math.round(e.sends),
      }
    : {};
}

function describe(change: RateChange): { level: 'debug' | 'info' | 'warn'; msg: string } {
  const move = `${round(change.fromRate)} → ${round(change.toRate)}`;
  switch (change.reason) {
    case 'cut': {
      const how =
        change.note === 'wall'
          ? 'a wall of 429s'
          : change.note === 'probe'
            ? 'a raise went past the limit'
            : change.note === 'tested'
              ? 'put under test'
              : change.note === 'stated'
                ? 'to what got through before a stated wait'
                : change.note === 'blip'
                  ? 'a first blip: given back after two clean windows'
                  : '';
      return { level: 'warn', msg: `learned rate lowered: ${move} (congestion${how ? `, ${how}` : ''})` };
    }
    case 'noise':
      return {
        level: 'info',
        msg: `learned rate restored: ${move} (the cut's 429s were noise${evidenceText(change.note)})`,
      };
    case 'undecided':
      return {
        level: 'info',
        msg: `learned rate restored: ${move} (its test could not tell congestion from noise${evidenceText(change.note)})`,
      };
    case 'recover':
      return { level: 'info', msg: `learned rate restored: ${move} (the cut was a blip near the limit)` };
    case 'raise':
      return change.note === 'reached'
        ? { level: 'info', msg: `learned rate raised back: ${move} (at the limit)` }
        : { level: 'debug', msg: `learned rate raised: ${move}` };
    case 'return':
      return change.note === 'reached'
        ? { level: 'info', msg: `learned rate raised back: ${move} (the rate that held before the cut)` }
        : { level: 'debug', msg: `learned rate raised: ${move} (toward the rate that held)` };
    case 'override':
      return change.note === 'set'
        ? { level: 'info', msg: `operator override set (hfq limit): rate ${move}` }
        : {
            level: 'info',
            msg: `operator override cleared (hfq limit): rate ${move} (the configured limit)`,
          };
  }
}

/**
 * A noise verdict's note is the evidence the domain's noise level now rests on, "429s/sends"
 * (decayed, capped: lua/congestion-detector.lua, det_learn_noise).
 */
function noiseEvidence(note: string): { share: number; throttled: number; sends: number } | undefined {
  const match = /^([\d.]+)\/([\d.]+)$/.exec(note);
  if (!match) return undefined;
  const throttled = Number(match[1]);
  const sends = Number(match[2]);
  return sends > 0 ? { share: throttled / sends, throttled, sends } : undefined;
}

function evidenceText(note: string): string {
  const e = noiseEvidence(note);
  if (!e) return '';
  return `; noise level ${(e.share * 100).toFixed(1)}% from ${Math.round(e.throttled)} 429s in ${Math.round(e.sends)} sends`;
}

function round(rate: number): number {
  return Math.round(rate * 100) / 100;
}
