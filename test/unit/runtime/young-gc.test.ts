/**
 * Received network data is garbage once used, but V8 frees a chunk's memory only when it collects
 * the young generation, which it starts by itself only after ≈ 32 MiB of such buffers. young-gc
 * collects after every BUDGET bytes taken in, so dead chunks stay under that.
 */
import { describe, expect, it } from 'vitest';
import { BUDGET, available, minorCollections, received } from '../../../src/runtime/young-gc.js';

const CHUNK = 64 << 10;

/** Allocates `total` bytes in socket-sized chunks that die at once; the most ArrayBuffer memory alive at any point. */
function churn(total: number, onChunk: (n: number) => void): number {
  let peak = 0;
  let sink = 0;
  for (let done = 0; done < total; done += CHUNK) {
    // Like a socket read: a fresh buffer outside the pool, filled, used once and dropped.
    const b = Buffer.allocUnsafeSlow(CHUNK).fill(done & 0xff);
    sink ^= b[CHUNK - 1]!;
    onChunk(CHUNK);
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  }
  expect(sink).toBeGreaterThanOrEqual(0);
  return peak;
}

describe('young-gc', () => {
  it('can collect the young generation in this Node', () => {
    expect(available).toBe(true);
  });

  it('collects once per BUDGET bytes received, not before', () => {
    const before = minorCollections();
    received(BUDGET - 1);
    expect(minorCollections()).toBe(before);
    received(1);
    expect(minorCollections()).toBe(before + 1);
    received(BUDGET * 3);
    expect(minorCollections()).toBe(before + 2);
  });

  it('keeps the memory of dead received chunks near the budget', () => {
    const base = process.memoryUsage().arrayBuffers;
    const before = minorCollections();
    const peak = churn(128 << 20, received) - base;
    expect(minorCollections() - before).toBeGreaterThanOrEqual(Math.floor((128 << 20) / BUDGET) - 1);
    // Measured 7.5–11 MiB: dead buffers are freed by V8's concurrent sweeper shortly after each
    // collection. Without the collections, ≈ 33 MiB of them pile up (the next case).
    expect(peak).toBeLessThan(3 * BUDGET);
  });

  it('without it, V8 lets far more than the budget pile up (what the module is for)', () => {
    const base = process.memoryUsage().arrayBuffers;
    const peak = churn(128 << 20, () => undefined) - base;
    expect(peak).toBeGreaterThan(6 * BUDGET);
  });
});
