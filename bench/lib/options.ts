/**
 * What the command line and the environment ask of this run: its size (`--quick`, `--smoke`),
 * the `--case` filter, `--baseline` and where the report goes (BENCH_RESULTS_DIR).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');
export const smoke = process.argv.includes('--smoke');
export const quick = smoke || process.argv.includes('--quick');
export const resultsDir = process.env.BENCH_RESULTS_DIR ?? path.join(repoRoot, 'bench/results');
/** `--case TEXT`: run only the cases whose name contains TEXT (for profiling one path). */
export const only = argValue('--case');
/** `--baseline REF`: airlock built at git ref REF takes the peer's place (bench/lib/baseline.ts). */
export const baselineRef = argValue('--baseline');
/** The entry of this checkout's airlock build (`npm run bench` builds it first). */
export const airlockEntry = path.join(repoRoot, 'dist/cli/main.js');
export const MiB = 2 ** 20;

export const S = smoke
  ? { big: 2 * MiB, concurrentImage: 1 * MiB, small: 5, smallSize: 1024, reps: 1, loadSeconds: 0.3, connections: 4, concurrency: 3 }
  : quick
  ? { big: 24 * MiB, concurrentImage: 4 * MiB, small: 50, smallSize: 8 * 1024, reps: 3, loadSeconds: 2, connections: 32, concurrency: 16 }
  : { big: 512 * MiB, concurrentImage: 64 * MiB, small: 50, smallSize: 32 * 1024, reps: 3, loadSeconds: 5, connections: 32, concurrency: 16 };

/** Whether `--case` selects a case with one of these names (every case without `--case`). */
export function selected(...names: string[]): boolean {
  return !only || names.some((n) => n.includes(only));
}

/** The word after `flag` on the command line; a missing word is a usage error, not a silent full run. */
function argValue(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`bench: ${flag} needs a value`);
  return v;
}
