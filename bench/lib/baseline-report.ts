/**
 * The report of a `--baseline` run: bench/results/baseline.{json,md} (latest.* stays the last
 * run against the peers). Per case, new ÷ baseline of the medians, flagged when the new build
 * is more than WORSE worse in the case's own measure.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BaselineBuild } from './baseline.js';
import { S, repoRoot, resultsDir } from './options.js';
import { extras, machine, results, skipped, type CaseResult } from './report.js';
import { sh } from './shell.js';
import type { Stats } from './stats.js';

/** How much worse than the baseline a case may be before it is flagged (5%). */
export const WORSE = 0.05;

export interface BaselineRow { case: string; unit: string; better: 'higher' | 'lower'; new: Stats; baseline: Stats; ratio: number; worse: boolean }

/** Worse as the main report reads "better": more time (ratio > 1.05), or less of a rate (ratio < 0.95). */
export function isWorse(c: Pick<CaseResult, 'better' | 'ratio'>): boolean {
  return c.better === 'lower' ? c.ratio > 1 + WORSE : c.ratio < 1 - WORSE;
}

/** Writes baseline.json and baseline.md into the results directory and prints the markdown. */
export async function writeBaselineReport(base: BaselineBuild): Promise<void> {
  const git = async (...args: string[]) => (await sh('git', ['--no-optional-locks', '-C', repoRoot, ...args], { maxBuffer: 64 << 20 })).stdout.trim();
  // The new side is this checkout as built, uncommitted changes included.
  const current = { commit: await git('rev-parse', 'HEAD'), uncommittedChanges: (await git('status', '--porcelain', '--untracked-files=no')) !== '' };
  const rows: BaselineRow[] = results.map((c) => ({ case: c.case, unit: c.unit, better: c.better, new: c.airlock, baseline: c.distribution, ratio: c.ratio, worse: isWorse(c) }));
  const report = {
    createdAt: new Date().toISOString(),
    machine: machine(),
    sizes: S,
    new: current,
    baseline: { ref: base.ref, commit: base.commit, nodeModules: base.nodeModules, worktree: base.dir },
    worseThan: WORSE,
    results: rows,
    skipped,
    extras,
  };
  await mkdir(resultsDir, { recursive: true });
  await writeFile(path.join(resultsDir, 'baseline.json'), `${JSON.stringify(report, null, 2)}\n`);
  const md = renderMarkdown(report);
  await writeFile(path.join(resultsDir, 'baseline.md'), md);
  console.log(md);
}

function renderMarkdown(r: { createdAt: string; machine: ReturnType<typeof machine>; new: { commit: string; uncommittedChanges: boolean }; baseline: { ref: string; commit: string; nodeModules: string }; results: BaselineRow[]; skipped: typeof skipped; extras: typeof extras }): string {
  const f = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
  const s = (x: Stats) => `${f(x.min)} / **${f(x.median)}** / ${f(x.max)}`;
  const worse = r.results.filter((c) => c.worse);
  const pct = `${WORSE * 100}%`;
  return [
    `# airlock bench against a baseline (${r.machine.quick ? 'quick' : 'full'}), ${r.createdAt}`,
    '',
    `New: this checkout as built (HEAD ${r.new.commit.slice(0, 12)}${r.new.uncommittedChanges ? ' with uncommitted changes' : ''}). Baseline: \`${r.baseline.ref}\` (${r.baseline.commit.slice(0, 12)}), built in a temporary git worktree (packages: ${r.baseline.nodeModules === 'linked' ? "this checkout's node_modules, the lockfiles being the same" : 'npm ci'}). The baseline runs in the peer's place in every case: same upstream, images, clients, node flags and repetitions, alternating who goes first; the \`airlock\` command of the baseline replaces the peer's tool in gc, prefetch, freeze and import.`,
    '',
    `Machine: ${r.machine.nproc} cores, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}, ${r.machine.cpu ?? ''}.`,
    '',
    `The ratio is new ÷ baseline of the medians. A case is more than ${pct} worse when it takes more than ${1 + WORSE}× the baseline's time (seconds: lower is better), or gives less than ${1 - WORSE}× its rate (MB/s, req/s: higher is better).`,
    '',
    worse.length
      ? `**${worse.length} of ${r.results.length} cases more than ${pct} worse:** ${worse.map((c) => `${c.case} (${c.ratio.toFixed(2)})`).join('; ')}.`
      : `**No case more than ${pct} worse** (${r.results.length} compared${r.skipped.length ? `, ${r.skipped.length} skipped` : ''}).`,
    '',
    `| case | unit | new min / median / max | baseline min / median / max | new ÷ baseline | more than ${pct} worse |`,
    '| --- | --- | --- | --- | --- | --- |',
    ...r.results.map((c) => `| ${c.case} | ${c.unit} (${c.better} is better) | ${s(c.new)} | ${s(c.baseline)} | **${c.ratio.toFixed(2)}** | ${c.worse ? '**yes**' : 'no'} |`),
    '',
    ...(r.skipped.length ? ['Skipped:', '', '| case | reason |', '| --- | --- |', ...r.skipped.map((c) => `| ${c.case} | ${c.reason.replaceAll('|', '\\|')} |`), ''] : []),
    `Beside the cases ("airlock" is the new build; the main report's targets are against the peers, not the baseline):`,
    '',
    '| measure | value |',
    '| --- | --- |',
    ...r.extras.map((e) => `| ${e.case} | ${e.value} |`),
    '',
  ].join('\n');
}
