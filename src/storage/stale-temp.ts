import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { isNotFound } from './open-if-exists.js';

/** A process with that id runs (EPERM: it does, as another user). */
function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes, under the temp area `base`, the directories of processes that are gone, and stray files. */
export async function removeStaleTemp(base: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(base);
  } catch (e) {
    if (isNotFound(e)) return;
    throw e;
  }
  for (const n of names) {
    if (/^\d+$/.test(n) && isAlive(Number(n))) continue;
    await rm(path.join(base, n), { recursive: true, force: true });
  }
}
