/**
 * `airlock serve` as its own process, started as the launchers do (NODE_FLAGS), on a free port.
 * `entry` is the build's dist/cli/main.js: this checkout's or a baseline's, started alike.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { request } from 'undici';
import { NODE_FLAGS } from '../../test/helpers/cli.js';
import { freePort } from '../../test/helpers/ports.js';
import { mirrorUpstreams, type TestUpstream } from '../../test/helpers/upstream.js';
import type { Mirror } from './mirrors.js';
import { airlockEntry } from './options.js';
import { stopChild } from './proc.js';
import { workPath } from './work-dir.js';

/** Polls `/v2/` until it answers below 500, or until `gone()` says the process has exited. */
export async function waitReady(url: string, ms: number, gone: () => boolean = () => false): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (gone()) return;
    try {
      const r = await request(`${url}/v2/`);
      await r.body.dump();
      if (r.statusCode < 500) return;
    } catch { /* not yet */ }
    if (Date.now() > until) throw new Error(`${url} did not become ready`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Log lines at info and up, parsed, instead of warn and up echoed: the tap gets every line
 * (request lines carry `ms`, the server's time); lines at warn and up are still echoed.
 */
export type LogTap = (line: Record<string, unknown>) => void;

/** `extra` gives more config lines for each attempt (the fleet's port is picked per attempt too). */
export async function startAirlockProcess(entry: string, root: string, upstream?: TestUpstream, extra: () => Promise<string[]> = async () => [], tap?: LogTap): Promise<Mirror> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startAirlockOnce(entry, root, await freePort(), upstream, await extra(), tap);
    } catch (e) {
      // Another program took the port between the check and the bind: try another one.
      if (attempt >= 3 || !(e instanceof PortTaken)) throw e;
    }
  }
}

class PortTaken extends Error {}

/** Hands a JSON log line to `tap`; true unless it is to be echoed too (not JSON, or warn and up). */
function tapped(line: string, tap: LogTap): boolean {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return false;
  }
  tap(j);
  return j.level === 'info' || j.level === 'debug' || j.level === 'trace';
}

async function startAirlockOnce(entry: string, root: string, port: number, upstream: TestUpstream | undefined, extra: string[], tap: LogTap | undefined): Promise<Mirror> {
  // Which build a log line or an error came from.
  const name = entry === airlockEntry ? 'airlock' : 'baseline airlock';
  const cfg = workPath(`airlock-${port}.yml`);
  // `extra` follows storage.root: its first lines may be more storage keys.
  const lines = [`listen: "127.0.0.1:${port}"`, `storage:\n  root: ${root}`, ...extra, `log:\n  level: ${tap ? 'info' : 'warn'}`];
  if (upstream) lines.push(mirrorUpstreams(upstream));
  await writeFile(cfg, `${lines.join('\n')}\n`);
  // AIRLOCK_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles each airlock process.
  const nodeArgs = (process.env.AIRLOCK_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // AIRLOCK_ENV="NAME=value …" adds environment variables for the airlock processes only.
  const extraEnv = Object.fromEntries((process.env.AIRLOCK_ENV ?? '').split(' ').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const child = spawn(process.execPath, [...NODE_FLAGS, ...nodeArgs, entry, 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...extraEnv } });
  // Its error log lines (level warn and up are all it writes) tell which side failed a case.
  const echo = (lines: string[]) => process.stderr.write(lines.map((l) => `${name} ${port}: ${l}\n`).join(''));
  if (tap) {
    let partial = '';
    child.stdout.on('data', (b: Buffer) => {
      const lines = (partial + b.toString()).split('\n');
      partial = lines.pop() ?? '';
      echo(lines.filter((l) => l && !tapped(l, tap)));
    });
  } else {
    child.stdout.on('data', (b: Buffer) => echo(b.toString().split('\n').filter(Boolean)));
  }
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
    process.stderr.write(b);
  });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, 15_000, () => child.exitCode !== null);
  if (child.exitCode !== null) {
    if (/port is in use/.test(stderr)) throw new PortTaken(stderr.trim());
    throw new Error(`${name} exited with ${child.exitCode}: ${stderr.trim()}`);
  }
  return {
    name, url, host: `127.0.0.1:${port}`, pid: child.pid,
    stop: () => stopChild(child),
  };
}
