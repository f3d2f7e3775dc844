/** Runs the built `airlock` command as an operator would, capturing exit code and output. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

export const AIRLOCK_BIN = path.resolve('dist/cli/main.js');
/**
 * The Node flags every shipped launcher passes (the bin's shebang, npm start, the systemd unit,
 * the container): a 1 MiB young generation keeps the heap near its live size (README: memory).
 */
export const NODE_FLAGS = ['--max-semi-space-size=4'];

export async function runAirlock(args: string[], timeoutMs = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [...NODE_FLAGS, AIRLOCK_BIN, ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}
