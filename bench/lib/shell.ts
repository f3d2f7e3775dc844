/** Commands the cases run: the built `airlock` CLI, peers' tools, `sync`. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export const sh = promisify(execFile);

/** Writes dirty pages back first, so no case pays for an earlier case's writeback. */
export const settle = () => sh('sync');

/** Runs a built `airlock` command to completion: `entry` is its dist/cli/main.js (this checkout's, or a baseline's). */
export async function airlockCli(entry: string, args: string[]): Promise<void> {
  await sh(process.execPath, [entry, ...args], { maxBuffer: 64 << 20, timeout: 1_800_000 });
}

/** Seconds `fn` took. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}
