import { describe, expect, it } from 'vitest';
import { Timeline, Timelines, totalsOf } from '../../../src/app/console/timelines.js';

const zero = { hits: 0, misses: 0, servedBytes: 0, fetchedBytes: 0 };
const T0 = Date.UTC(2026, 11, 5, 8, 0, 0);

describe('console timelines', () => {
  it('puts what grew between samples into the bucket of the later sample, the partial one included', () => {
    const t = new Timelines();
    t.sample(T0, zero);
    t.sample(T0 + 30_000, { hits: 3, misses: 1, servedBytes: 100, fetchedBytes: 40 });
    t.sample(T0 + 90_000, { hits: 5, misses: 1, servedBytes: 150, fetchedBytes: 40 });
    const hour = t.hour.series(T0 + 90_000);
    expect(hour.step).toBe(60);
    expect(hour.hits).toHaveLength(60);
    // The last bucket is the current minute (partial): 2 hits after the first minute.
    expect(hour.hits.slice(-2)).toEqual([3, 2]);
    expect(hour.start).toBe(T0 + 60_000 - 59 * 60_000);
    expect(totalsOf(hour)).toEqual({ hitRatio: 5 / 6, hits: 5, misses: 1, servedBytes: 150, fetchedBytes: 40 });
    const day = t.day.series(T0 + 90_000);
    expect(day.hits).toHaveLength(144);
    expect(day.hits.at(-1)).toBe(5);
  });

  it('the first reading is only a base, and a counter that went backwards counts from its new value', () => {
    const t = new Timelines();
    t.sample(T0, { hits: 1000, misses: 0, servedBytes: 0, fetchedBytes: 500 });
    t.sample(T0 + 1000, { hits: 1001, misses: 0, servedBytes: 0, fetchedBytes: 20 });
    const s = t.hour.series(T0 + 1000);
    expect(s.hits.at(-1)).toBe(1);
    expect(s.fetchedBytes.at(-1)).toBe(20);
    expect(totalsOf(t.hour.series(T0 + 1000)).hitRatio).toBe(1);
  });

  it('forgets buckets older than the ring and never shows them after a lap', () => {
    const tl = new Timeline(60, 60);
    tl.add(T0, { ...zero, hits: 7 });
    expect(tl.series(T0).hits.at(-1)).toBe(7);
    // One hour later the same slot is reused: the old value must not show up.
    const later = T0 + 3_600_000;
    expect(tl.series(later).hits.reduce((a, b) => a + b, 0)).toBe(0);
    tl.add(later, { ...zero, hits: 2 });
    expect(tl.series(later).hits.at(-1)).toBe(2);
    expect(tl.series(later).hits.reduce((a, b) => a + b, 0)).toBe(2);
  });

  it('an idle hour has no ratio', () => {
    expect(totalsOf(new Timeline(60, 60).series(T0)).hitRatio).toBeNull();
  });
});
