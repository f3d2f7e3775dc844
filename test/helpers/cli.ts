/** Runs the built `airlock` command as an operator would, capturing exit code and output. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';

export const AIRLOCK_BIN = path.resolve('dist/cli/main.js');
/**
 * The Node flags every shipped launcher passes (the bin's shebang, npm start, the systemd unit,
 * the container): a 4 MiB young generation, undici's WebAssembly parser left in baseline code
 * (its optimizing compile cost ≈ 30 MiB of RSS), and optimizing compiles on the main thread,
 * whose scratch memory worker threads' arenas kept (README: memory).
 */
export const NODE_FLAGS = ['--max-semi-space-size=4', '--initial-old-space-size=64', '--liftoff-only', '--no-concurrent-recompilation'];

export async function runAirlock(args: string[], timeoutMs = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [...NODE_FLAGS, AIRLOCK_BIN, ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

export interface ServeProcess {
  child: ChildProcess;
  /** Resolves with the exit code once the process has exited. */
  exit: Promise<number | null>;
  /** What it wrote to stdout and stderr so far (the first 64 KiB). */
  out(): string;
}

/** Starts `airlock serve --config cfg` as its own process, as the launchers do (NODE_FLAGS); `env` is added to this process's environment. */
export function spawnServe(cfg: string, env?: NodeJS.ProcessEnv): ServeProcess {
  const child = spawn(process.execPath, [...NODE_FLAGS, AIRLOCK_BIN, 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) });
  let out = '';
  const keep = (b: Buffer) => {
    if (out.length < 65_536) out += b.toString();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, exit, out: () => out };
}

/** Waits until `url`/healthz answers 200; throws after `timeoutMs`, with the server's output when given. */
export async function waitHealthy(url: string, opts: { timeoutMs?: number; out?: () => string } = {}): Promise<void> {
  const until = Date.now() + (opts.timeoutMs ?? 15_000);
  for (;;) {
    try {
      const r = await request(`${url}/healthz`);
      await r.body.dump();
      if (r.statusCode === 200) return;
    } catch { /* not yet */ }
    if (Date.now() > until) throw new Error(`${url} never became ready${opts.out ? `: ${opts.out()}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
