/** The run's scratch directory (stores, configs, bundles), removed when the run ends. */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

let dir = '';
let n = 0;

export async function makeWorkDir(): Promise<string> {
  dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-bench-'));
  return dir;
}

/** A path under the work directory. */
export function workPath(...parts: string[]): string {
  if (!dir) throw new Error('bench: no work directory yet');
  return path.join(dir, ...parts);
}

/** A number not used before in this run, for unique file names. */
export function nextId(): number {
  return n++;
}
