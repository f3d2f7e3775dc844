/** Runs one case for airlock and its peer (with `--baseline`: the baseline build), S.reps times each, and records it. */
import { S, baselineRef, selected } from './options.js';
import { record, skipped, type CaseResult } from './report.js';
import { settle } from './shell.js';

/** A case against Distribution; resolves with what was recorded (undefined when `--case` leaves it out or the baseline failed it). */
export async function both(name: string, unit: string, better: 'higher' | 'lower', target: string, fn: (who: 'airlock' | 'distribution', rep: number) => Promise<number>): Promise<CaseResult | undefined> {
  return against(name, undefined, unit, better, target, (who, rep) => fn(who === 'peer' ? 'distribution' : 'airlock', rep));
}

/**
 * Runs a case `reps` times (S.reps unless a case needs more) for airlock and its peer
 * (Distribution unless `peer` names another tool), alternating who goes first.
 */
export async function against(name: string, peer: string | undefined, unit: string, better: 'higher' | 'lower', target: string, fn: (who: 'airlock' | 'peer', rep: number) => Promise<number>, reps = S.reps): Promise<CaseResult | undefined> {
  if (!selected(name)) return undefined;
  await settle();
  const runs: Record<'airlock' | 'peer', number[]> = { airlock: [], peer: [] };
  for (let i = 0; i < reps; i++) {
    for (const who of i % 2 ? (['airlock', 'peer'] as const) : (['peer', 'airlock'] as const)) {
      try {
        runs[who].push(await fn(who, i));
      } catch (e) {
        // A baseline that cannot run a case (a ref from before the feature) skips that case, not the run.
        if (who === 'airlock' || !baselineRef) throw e;
        skipBaselineFailure(e, name);
        return undefined;
      }
    }
  }
  return record(name, peer, unit, better, target, runs.airlock, runs.peer);
}

/** Lists `names` as skipped because the baseline build failed them with `e`, and says so on stderr. */
export function skipBaselineFailure(e: unknown, ...names: string[]): void {
  const reason = `the baseline failed it: ${(e as Error).message.split('\n')[0] ?? ''}`;
  console.error(`bench: ${names.join('; ')}: skipped, ${reason}`);
  for (const name of names) skipped.push({ case: name, reason });
}
