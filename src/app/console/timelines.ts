/**
 * The overview's traffic timelines: cumulative counters sampled (every minute, and on each read)
 * into ring buffers of fixed buckets. What grew between two samples is added to the bucket of
 * the later one, so the current, partial bucket holds everything up to the last read.
 */
import type { Series, Totals } from '../../http/console-service.js';

/** Cumulative counts since the process started. */
export interface Counts {
  hits: number;
  misses: number;
  servedBytes: number;
  fetchedBytes: number;
}

const FIELDS = ['hits', 'misses', 'servedBytes', 'fetchedBytes'] as const;

export class Timeline {
  /** Bucket number (epoch / step) each slot holds, so a slot left from an earlier lap reads as 0. */
  readonly #slot: number[];
  readonly #values: Record<keyof Counts, number[]>;

  constructor(readonly stepSeconds: number, readonly buckets: number) {
    this.#slot = new Array<number>(buckets).fill(-1);
    this.#values = { hits: new Array<number>(buckets).fill(0), misses: new Array<number>(buckets).fill(0), servedBytes: new Array<number>(buckets).fill(0), fetchedBytes: new Array<number>(buckets).fill(0) };
  }

  #bucket(at: number): number {
    return Math.floor(at / (this.stepSeconds * 1000));
  }

  /** Adds `delta` to the bucket of time `at` (epoch ms). */
  add(at: number, delta: Counts): void {
    const b = this.#bucket(at);
    const i = b % this.buckets;
    if (this.#slot[i] !== b) {
      this.#slot[i] = b;
      for (const f of FIELDS) this.#values[f][i] = 0;
    }
    for (const f of FIELDS) this.#values[f][i] = this.#values[f][i]! + delta[f];
  }

  /** The buckets ending with the one of `now` (oldest first). */
  series(now: number): Series {
    const last = this.#bucket(now);
    const first = last - this.buckets + 1;
    const out: Series = { step: this.stepSeconds, start: first * this.stepSeconds * 1000, hits: [], misses: [], servedBytes: [], fetchedBytes: [] };
    for (let b = first; b <= last; b++) {
      const i = ((b % this.buckets) + this.buckets) % this.buckets;
      const here = this.#slot[i] === b;
      for (const f of FIELDS) out[f].push(here ? this.#values[f][i]! : 0);
    }
    return out;
  }
}

export function totalsOf(s: Series): Totals {
  const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
  const hits = sum(s.hits);
  const misses = sum(s.misses);
  return { hitRatio: hits + misses > 0 ? hits / (hits + misses) : null, hits, misses, servedBytes: sum(s.servedBytes), fetchedBytes: sum(s.fetchedBytes) };
}

/** The hour (60 × 60 s) and the day (144 × 600 s), fed from one cumulative reading. */
export class Timelines {
  readonly hour = new Timeline(60, 60);
  readonly day = new Timeline(600, 144);
  #last: Counts | undefined;

  /**
   * Takes a reading of the cumulative counters. The first only sets the base; a counter that went
   * backwards (a reload replaced upstream clients) counts from its new value.
   */
  sample(now: number, counts: Counts): void {
    const prev = this.#last;
    this.#last = { ...counts };
    if (!prev) return;
    const delta = { hits: 0, misses: 0, servedBytes: 0, fetchedBytes: 0 };
    for (const f of FIELDS) delta[f] = counts[f] >= prev[f] ? counts[f] - prev[f] : counts[f];
    this.hour.add(now, delta);
    this.day.add(now, delta);
  }
}
