/**
 * Keeps `npm run bench` from rotting: runs it with tiny sizes and checks that it measured every
 * case for both mirrors and wrote its report. It asserts no timing.
 */
import { execFile } from 'node:child_process';
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
