/**
 * Bounds the memory that received network data holds after it is used.
 *
 * Each read from a socket is a fresh 64 KiB Buffer allocated with malloc. Once a chunk has been
 * hashed, written and sent, it is garbage, but its memory is freed only when V8 collects the
 * young generation. Node 20's V8 starts that collection for external memory only when the young
 * generation's buffers reach twice its built-in maximum semi-space, about 32 MiB on 64-bit,
 * whatever --max-semi-space-size says. During a cold pull, that was 32 MiB of dead chunks at the
 * peak (a third of the process's RSS), and glibc keeps the pages resident after they are freed.
 *
 * `received(bytes)` is called for each chunk a fill or a push takes in. After every BUDGET
 * bytes across all of them, it runs a minor (young-generation) collection: 0.8 ms on average
 * here. A 512 MiB cold pull ran 187 minor collections in all (V8's own included), 148 ms of its
 * ≈ 2.8 CPU seconds. Only the young generation is collected; a full collection costs 10 to 50
 * times as much. A budget of 2 MiB instead of 4 saved ≈ 2 MiB more and doubled that time.
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
