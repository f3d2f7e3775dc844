/**
 * `--baseline REF`: airlock built at a git ref, in a temporary git worktree, run in the peer's
 * place (servers, fleets and the `airlock` command alike), so that a change is measured against
 * the code before it in one run. The worktree leaves this checkout's branch, index and files
 * alone, and is removed when the run ends, also when it fails or is interrupted.
 */
import { execFileSync } from 'node:child_process';
import { unlinkSync } from 'node:fs';
import { mkdtemp, readFile, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { airlockEntry, baselineRef, repoRoot } from './options.js';
import { sh } from './shell.js';

export interface BaselineBuild {
  /** The ref as given, and the commit it named when the run started. */
  ref: string;
  commit: string;
  /** The worktree, and its build's entry (dist/cli/main.js). */
  dir: string;
  entry: string;
  /** How the worktree got its packages: this checkout's node_modules linked, or `npm ci`. */
  nodeModules: 'linked' | 'npm ci';
  remove(): Promise<void>;
}

let build: BaselineBuild | undefined;

/** Checks REF out into a new worktree under the temp directory, gives it its packages, and builds it. */
export async function prepareBaseline(ref: string): Promise<BaselineBuild> {
  // The build's commands end with the run when it is interrupted (they would write into a removed worktree).
  const stopBuild = new AbortController();
  const run = (cmd: string, args: string[], cwd: string) => sh(cmd, args, { cwd, maxBuffer: 64 << 20, timeout: 900_000, signal: stopBuild.signal });
  const commit = (await run('git', ['rev-parse', '--verify', `${ref}^{commit}`], repoRoot)).stdout.trim();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-baseline-'));
  let building: Promise<unknown> = Promise.resolve();
  let removed = false;
  const removeSync = () => {
    if (removed) return;
    removed = true;
    // The link first, so nothing that removes the worktree can reach this checkout's packages.
    try {
      unlinkSync(path.join(dir, 'node_modules'));
    } catch { /* no link: no node_modules, or npm ci's own */ }
    try {
      execFileSync('git', ['-C', repoRoot, 'worktree', 'remove', '--force', dir], { stdio: 'ignore' });
    } catch {
      // Not (or no longer) a worktree: whatever is left is only files, and git forgets it on prune.
      execFileSync('rm', ['-rf', dir]);
      execFileSync('git', ['-C', repoRoot, 'worktree', 'prune'], { stdio: 'ignore' });
    }
  };
  // An interrupted run skips `finally`: remove the worktree on the way out all the same.
  const onSignal = (signal: NodeJS.Signals) => {
    stopBuild.abort();
    void building.catch(() => undefined).finally(() => {
      removeSync();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const remove = async () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    removeSync();
    build = undefined;
  };
  try {
    console.error(`bench: baseline ${ref} (${commit.slice(0, 12)}): building in ${dir}…`);
    await (building = run('git', ['worktree', 'add', '--detach', dir, commit], repoRoot));
    const lock = async (root: string) => readFile(path.join(root, 'package-lock.json'), 'utf8').catch(() => '');
    let nodeModules: BaselineBuild['nodeModules'] = 'linked';
    if ((await lock(dir)) === (await lock(repoRoot)) && (await lock(dir)) !== '') {
      await symlink(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    } else {
      // Other packages at that ref. The package mirror is the only network here: take what the cache has first.
      nodeModules = 'npm ci';
      await (building = run('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], dir));
    }
    await (building = run(process.execPath, [path.join(dir, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], dir));
    build = { ref, commit, dir, entry: path.join(dir, 'dist/cli/main.js'), nodeModules, remove };
    return build;
  } catch (e) {
    await remove();
    throw new Error(`the baseline ${ref} did not build: ${(e as Error).message}`, { cause: e });
  }
}

/** The baseline build's entry; only once prepareBaseline has built it. */
export function baselineEntry(): string {
  if (!build) throw new Error('bench: no baseline build (run with --baseline REF)');
  return build.entry;
}

/** The `airlock` entry for a side of a case: this checkout's for airlock, the baseline's for the peer. */
export function entryFor(who: 'airlock' | 'distribution' | 'peer'): string {
  return who === 'airlock' ? airlockEntry : baselineEntry();
}

/** The peer as the reports name it: `name` (Distribution, a tool), or the baseline in its place. */
export function peerName(name: string): string {
  return baselineRef ? `baseline ${baselineRef}` : name;
}
