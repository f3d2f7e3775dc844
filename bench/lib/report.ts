/**
 * What the cases measured, and the report written from it: bench/results/latest.{json,md} for a
 * whole run, case.{json,md} for a `--case` run (never committed: a partial run must not replace
 * the whole run's report).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { peerName } from './baseline.js';
import { S, baselineRef, only, quick, resultsDir } from './options.js';
import { stats, type Stats } from './stats.js';

export interface CaseResult { case: string; unit: string; better: 'higher' | 'lower'; airlock: Stats; distribution: Stats; ratio: number; target?: string; note?: string; peer?: string }
export interface Extra { case: string; value: string; target?: string }

/** Compared cases, in the order they ran. */
export const results: CaseResult[] = [];
/** Single measures beside them (ratios to a direct pull, upstream bytes, CPU, RSS). */
export const extras: Extra[] = [];
/** Cases not compared, and why (with `--baseline`: the baseline build failed them). */
export const skipped: Array<{ case: string; reason: string }> = [];

/** Records one compared case (airlock's runs against its peer's) and logs its medians. */
export function record(name: string, namedPeer: string | undefined, unit: string, better: 'higher' | 'lower', target: string, airlockRuns: number[], peerRuns: number[]): CaseResult {
  const a = stats(airlockRuns);
  const d = stats(peerRuns);
  // With --baseline, the baseline build ran in the peer's place, whatever the case names.
  const peer = baselineRef ? peerName('') : namedPeer;
  const result: CaseResult = { case: name, unit, better, airlock: a, distribution: d, ratio: a.median / d.median, target, ...(peer ? { peer } : {}) };
  results.push(result);
  console.error(`bench: ${name}: airlock ${a.median.toFixed(3)} ${unit}, ${peer ?? 'distribution'} ${d.median.toFixed(3)} ${unit}, ratio ${(a.median / d.median).toFixed(2)}`);
  return result;
}

/** Writes latest.{json,md} (case.{json,md} after `--case`) into the results directory and prints the markdown. */
export async function writeReport(): Promise<void> {
  const report = { createdAt: new Date().toISOString(), machine: machine(), sizes: S, ...(only ? { cases: only } : {}), results, extras };
  await mkdir(resultsDir, { recursive: true });
  const base = only ? 'case' : 'latest';
  await writeFile(path.join(resultsDir, `${base}.json`), `${JSON.stringify(report, null, 2)}\n`);
  const md = renderMarkdown(report);
  await writeFile(path.join(resultsDir, `${base}.md`), md);
  console.log(md);
}

/** The machine the run measured on, and the run's size. */
export function machine(): { nproc: number; memoryGiB: number; node: string; cpu: string | undefined; quick: boolean } {
  return { nproc: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, cpu: os.cpus()[0]?.model, quick };
}

function renderMarkdown(r: { createdAt: string; machine: Record<string, unknown>; cases?: string; results: CaseResult[]; extras: Extra[] }): string {
  const f = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
  const s = (x: Stats) => `${f(x.min)} / **${f(x.median)}** / ${f(x.max)}`;
  return [
    `# airlock bench (${r.machine.quick ? 'quick' : 'full'}${r.cases ? `, only the cases whose name contains ${JSON.stringify(r.cases)}` : ''}), ${r.createdAt}`,
    '',
    `Machine: ${r.machine.nproc} cores, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}, ${r.machine.cpu ?? ''}. Peer: Distribution (docker-registry 2.8) in proxy mode for pull-through cases, plain for the plain-registry cases; same upstream (Distribution with token auth behind a byte-counting proxy), same run. The uplink case shapes that proxy hop to one link shared by all its connections (the direct pull it is compared with crosses the same link); the other cases run it at loopback speed. Fleet cases: three replicas of each on one bucket of a single-node Ceph radosgw (both stream blobs from the bucket through the replica; no redirects), two skopeo clients per replica, upstream bytes counted over the cold round. Offline-shipping cases name their peer: skopeo sync (no concurrency option in 1.9: images one after another, up to 6 layers at once; airlock prefetch runs with concurrency 4), and tar plus sha256sum (both sides end with their output synced to disk).`,
    '',
    '| case | unit | airlock min / median / max | peer (Distribution unless named) min / median / max | airlock ÷ peer | target |',
    '| --- | --- | --- | --- | --- | --- |',
    ...r.results.map((c) => `| ${c.case} | ${c.unit} (${c.better} is better) | ${s(c.airlock)} | ${c.peer ? `${c.peer}: ` : ''}${s(c.distribution)} | **${c.ratio.toFixed(2)}** | ${c.target ?? ''} |`),
    '',
    '| measure | value | target |',
    '| --- | --- | --- |',
    ...r.extras.map((e) => `| ${e.case} | ${e.value} | ${e.target ?? ''} |`),
    '',
  ].join('\n');
}
