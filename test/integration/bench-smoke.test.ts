/**
 * Keeps `npm run bench` from rotting: runs it with tiny sizes and checks that it measured every
 * case for both mirrors and wrote its report, and the same against a baseline build of HEAD.
 * It asserts no timing.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

it('npm run bench -- --smoke measures every case for both mirrors and writes its report', async () => {
  const out = await mkdtemp(path.join(os.tmpdir(), 'airlock-bench-smoke-'));
  try {
    await promisify(execFile)(process.execPath, ['node_modules/tsx/dist/cli.mjs', 'bench/run.ts', '--smoke'], {
      env: { ...process.env, BENCH_RESULTS_DIR: out },
      timeout: 240_000,
      maxBuffer: 16 << 20,
    });
    const report = JSON.parse(await readFile(path.join(out, 'latest.json'), 'utf8')) as { results: Array<{ case: string; airlock: { median: number }; distribution: { median: number }; ratio: number }>; extras: unknown[] };
    expect(report.results.length).toBeGreaterThanOrEqual(13);
    for (const name of ['prefetch', 'freeze', 'import']) expect(report.results.some((r) => r.case.startsWith(name)), name).toBe(true);
    for (const r of report.results) {
      expect(r.airlock.median, r.case).toBeGreaterThan(0);
      expect(r.distribution.median, r.case).toBeGreaterThan(0);
      expect(Number.isFinite(r.ratio), r.case).toBe(true);
    }
    const md = await readFile(path.join(out, 'latest.md'), 'utf8');
    expect(md).toContain('airlock ÷ peer');
    expect(md).toContain('skopeo sync: ');
    expect(md).toMatch(/upstream blob bytes ÷ image size \| airlock 1\.00/);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}, 300_000);

it('npm run bench -- --smoke --baseline HEAD compares every case with a build of HEAD, writes baseline.*, and removes the worktree', async () => {
  const out = await mkdtemp(path.join(os.tmpdir(), 'airlock-bench-baseline-'));
  try {
    await promisify(execFile)(process.execPath, ['node_modules/tsx/dist/cli.mjs', 'bench/run.ts', '--smoke', '--baseline', 'HEAD'], {
      env: { ...process.env, BENCH_RESULTS_DIR: out },
      timeout: 240_000,
      maxBuffer: 16 << 20,
    });
    type Row = { case: string; better: string; new: { median: number }; baseline: { median: number }; ratio: number; worse: boolean };
    const report = JSON.parse(await readFile(path.join(out, 'baseline.json'), 'utf8')) as { baseline: { commit: string; worktree: string }; results: Row[]; skipped: unknown[] };
    // HEAD runs every case: nothing skipped, and the cases the main report has.
    expect(report.skipped).toEqual([]);
    expect(report.results.length).toBeGreaterThanOrEqual(13);
    for (const name of ['cold pull', 'warm pull', 'fleet', 'plain registry', 'push', 'gc', 'prefetch', 'freeze', 'import']) expect(report.results.some((r) => r.case.startsWith(name)), name).toBe(true);
    for (const r of report.results) {
      expect(r.new.median, r.case).toBeGreaterThan(0);
      expect(r.baseline.median, r.case).toBeGreaterThan(0);
      expect(Number.isFinite(r.ratio), r.case).toBe(true);
      expect(r.worse, r.case).toBe(r.better === 'lower' ? r.ratio > 1.05 : r.ratio < 0.95);
    }
    expect(report.baseline.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(existsSync(report.baseline.worktree)).toBe(false);
    // Not over the main report.
    expect(existsSync(path.join(out, 'latest.json'))).toBe(false);
    const md = await readFile(path.join(out, 'baseline.md'), 'utf8');
    expect(md).toContain('new ÷ baseline');
    for (const r of report.results) expect(md).toContain(`| ${r.case} |`);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}, 300_000);
