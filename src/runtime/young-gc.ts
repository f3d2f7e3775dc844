/**
 * Bounds the memory that received network data holds after it is used.
 *
 * Each socket read is a fresh malloc'd Buffer, garbage once hashed, written and sent, but freed
 * only when V8 collects the young generation, which Node 20's V8 starts for external memory only
 * at about 32 MiB of such buffers, whatever --max-semi-space-size says.
 *
 * `received(bytes)` is called for each chunk a fill or a push takes in. After every BUDGET
 * bytes across all of them, it runs a minor (young-generation) collection: cheap, unlike a full
 * one. See bench/PERFORMANCE.md#minor-collections-during-fills.
 *
 * V8's `gc` function is not exposed by default. It is taken from a fresh context after the
 * --expose-gc flag is set, so nothing appears on the global object. If that fails (another
 * runtime, or a V8 that refuses the flag), `received` does nothing.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

/** Received bytes between two minor collections (an eighth of what V8 waits for by itself). */
export const BUDGET = 4 << 20;

type GcFunction = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

function takeGc(): GcFunction | undefined {
  const global = globalThis as { gc?: GcFunction };
  if (typeof global.gc === 'function') return global.gc;
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as GcFunction) : undefined;
  } catch {
    return undefined;
  }
}

const gc = takeGc();
let sinceLast = 0;
let collections = 0;

/** Counts `bytes` of network data taken in; runs a minor collection after every BUDGET bytes. */
export function received(bytes: number): void {
  if (!gc) return;
  sinceLast += bytes;
  if (sinceLast < BUDGET) return;
  sinceLast = 0;
  collections++;
  gc({ type: 'minor' });
}

/** Minor collections run so far (tests check the budget with it). */
export function minorCollections(): number {
  return collections;
}

/** True when minor collections can be run in this process. */
export const available = gc !== undefined;
