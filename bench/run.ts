/**
 * `npm run bench`: airlock and CNCF Distribution side by side, in one run, on 127.0.0.1 only.
 * Reports min/median/max of ≥3 repetitions and the ratio airlock ÷ Distribution of the medians.
 * It asserts nothing: numbers go to bench/results/latest.{json,md} and the terminal.
 *
 *   npm run bench              full run
 *   npm run bench -- --quick   small sizes, short loads (a quick look, and the smoke test)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { request } from 'undici';
import { DigestingStream } from '../src/oci/digest.js';
import { FilesystemDriver } from '../src/storage/filesystem-driver.js';
import { RegistryStore } from '../src/storage/registry-store.js';
import { startDistribution } from '../test/helpers/distribution.js';
import { freePort } from '../test/helpers/ports.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');
const quick = process.argv.includes('--quick');
const resultsDir = process.env.BENCH_RESULTS_DIR ?? path.join(here, 'results');

const SIZES = quick
  ? { bigBlob: 32 * 2 ** 20, reps: 3, loadSeconds: 2, connections: 32 }
  : { bigBlob: 512 * 2 ** 20, reps: 5, loadSeconds: 8, connections: 32 };

interface Stats { min: number; median: number; max: number; runs: number[] }
interface CaseResult { case: string; unit: string; better: 'higher' | 'lower'; airlock: Stats; distribution: Stats; ratio: number; target?: string }

function stats(runs: number[]): Stats {
  const s = [...runs].sort((a, b) => a - b);
  return { min: s[0]!, median: s[Math.floor(s.length / 2)]!, max: s[s.length - 1]!, runs };
}

interface Mirror { name: 'airlock' | 'distribution'; url: string; pid: () => number | undefined; stop(): Promise<void> }

async function waitReady(url: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const r = await request(`${url}/v2/`);
      await r.body.dump();
      if (r.statusCode < 500) return;
    } catch { /* not yet */ }
    if (Date.now() > until) throw new Error(`${url} did not become ready`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startAirlock(root: string, work: string): Promise<Mirror> {
  const port = await freePort();
  const cfg = path.join(work, 'airlock.yml');
  await writeFile(cfg, `listen: "127.0.0.1:${port}"\nstorage:\n  root: ${root}\nlog:\n  level: warn\n`);
  const child: ChildProcess = spawn(process.execPath, [path.join(repoRoot, 'dist/cli/main.js'), 'serve', '--config', cfg], { stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, 15_000);
  return {
    name: 'airlock', url, pid: () => child.pid,
    stop: async () => {
      if (child.exitCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await done;
    },
  };
}

/** A store with one big random blob and one manifest naming it, written as airlock writes. */
async function makeStore(root: string): Promise<{ repo: string; tag: string; blob: string; manifest: string; size: number }> {
  const store = new RegistryStore(new FilesystemDriver(root), { maxManifestSize: 4 << 20, manifestCacheBytes: 1 << 20 });
  const repo = 'bench/big';
  const staged = await store.stage();
  const hasher = new DigestingStream();
  const chunk = 4 << 20;
  for (let done = 0; done < SIZES.bigBlob; done += chunk) {
    const b = randomBytes(Math.min(chunk, SIZES.bigBlob - done));
    hasher.write(b);
    await staged.write(b);
  }
  hasher.end();
  hasher.resume();
  await new Promise((r) => hasher.once('end', r));
  const blob = hasher.digest();
  await store.commitBlob(staged, blob);
  await store.linkBlob(repo, blob);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const cd = await store.putBlob(config);
  await store.linkBlob(repo, cd);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cd.toString(), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: blob.toString(), size: SIZES.bigBlob }],
  }));
  const m = await store.putManifest(repo, manifest, 'latest');
  return { repo, tag: 'latest', blob: blob.toString(), manifest: m.digest.toString(), size: SIZES.bigBlob };
}

async function blobThroughput(m: Mirror, repo: string, digest: string, size: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await request(`${m.url}/v2/${repo}/blobs/${digest}`);
  let n = 0;
  for await (const c of r.body) n += (c as Buffer).length;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.statusCode !== 200 || n !== size) throw new Error(`${m.name}: blob GET gave ${r.statusCode} with ${n} bytes`);
  return size / secs / 1e6;
}

async function load(m: Mirror, url: string, method: 'GET' | 'HEAD'): Promise<number> {
  const res = await autocannon({
    url: `${m.url}${url}`,
    method,
    connections: SIZES.connections,
    duration: SIZES.loadSeconds,
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json' },
  });
  if (res.non2xx > 0 || res.errors > 0) throw new Error(`${m.name}: ${res.non2xx} non-2xx and ${res.errors} errors on ${method} ${url}`);
  return res.requests.average;
}

async function rssPeakKiB(pid: number | undefined): Promise<number | undefined> {
  if (!pid) return undefined;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]);
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'airlock-bench-'));
  const root = path.join(work, 'store');
  await mkdir(root, { recursive: true });
  const results: CaseResult[] = [];
  const mirrors: Mirror[] = [];
  try {
    console.error(`bench: generating a ${SIZES.bigBlob / 2 ** 20} MiB blob…`);
    const img = await makeStore(root);
    const dist = await startDistribution({ root });
    mirrors.push({ name: 'distribution', url: dist.url, pid: () => dist.pid, stop: () => dist.stop() });
    mirrors.push(await startAirlock(root, work));
    const [dm, am] = [mirrors[0]!, mirrors[1]!];

    const both = async (name: string, unit: string, better: 'higher' | 'lower', target: string, fn: (m: Mirror) => Promise<number>) => {
      const runs: Record<string, number[]> = { airlock: [], distribution: [] };
      for (let i = 0; i < SIZES.reps; i++) {
        // Alternate who goes first so warm-up and page cache favour neither.
        for (const m of i % 2 ? [am, dm] : [dm, am]) runs[m.name]!.push(await fn(m));
      }
      const a = stats(runs.airlock!);
      const d = stats(runs.distribution!);
      results.push({ case: name, unit, better, airlock: a, distribution: d, ratio: a.median / d.median, target });
      console.error(`bench: ${name}: airlock ${a.median.toFixed(1)} ${unit}, distribution ${d.median.toFixed(1)} ${unit}`);
    };

    // Warm the page cache once, so both read the blob from memory.
    await blobThroughput(am, img.repo, img.blob, img.size);
    await both(`warm blob GET (${img.size / 2 ** 20} MiB)`, 'MB/s', 'higher', '≥ 1.0', (m) => blobThroughput(m, img.repo, img.blob, img.size));
    await both('warm manifest GET by tag, 32 conns', 'req/s', 'higher', '≥ 1.0', (m) => load(m, `/v2/${img.repo}/manifests/${img.tag}`, 'GET'));
    await both('warm manifest GET by digest, 32 conns', 'req/s', 'higher', '≥ 1.0', (m) => load(m, `/v2/${img.repo}/manifests/${img.manifest}`, 'GET'));
    await both('warm manifest HEAD by tag, 32 conns', 'req/s', 'higher', '≥ 1.0', (m) => load(m, `/v2/${img.repo}/manifests/${img.tag}`, 'HEAD'));
    const rss = { airlock: await rssPeakKiB(am.pid()), distribution: await rssPeakKiB(dm.pid()) };

    const machine = { nproc: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, cpu: os.cpus()[0]?.model, quick };
    const report = { createdAt: new Date().toISOString(), machine, results, peakRssKiB: rss };
    await mkdir(resultsDir, { recursive: true });
    await writeFile(path.join(resultsDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    const md = renderMarkdown(report);
    await writeFile(path.join(resultsDir, 'latest.md'), md);
    console.log(md);
  } finally {
    for (const m of mirrors) await m.stop().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
}

function renderMarkdown(r: { createdAt: string; machine: Record<string, unknown>; results: CaseResult[]; peakRssKiB: Record<string, number | undefined> }): string {
  const f = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));
  const s = (x: Stats) => `${f(x.min)} / **${f(x.median)}** / ${f(x.max)}`;
  const lines = [
    `# airlock bench (${r.machine.quick ? 'quick' : 'full'}), ${r.createdAt}`,
    '',
    `Machine: ${r.machine.nproc} cores, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}, ${r.machine.cpu ?? ''}`,
    '',
    '| case | unit | airlock min / median / max | Distribution min / median / max | airlock ÷ Distribution | target |',
    '| --- | --- | --- | --- | --- | --- |',
    ...r.results.map((c) => `| ${c.case} | ${c.unit} (${c.better} is better) | ${s(c.airlock)} | ${s(c.distribution)} | **${c.ratio.toFixed(2)}** | ${c.target ?? ''} |`),
    '',
    `Peak RSS after the run: airlock ${r.peakRssKiB.airlock ? Math.round(r.peakRssKiB.airlock / 1024) : '?'} MiB, Distribution ${r.peakRssKiB.distribution ? Math.round(r.peakRssKiB.distribution / 1024) : '?'} MiB.`,
    '',
  ];
  return lines.join('\n');
}

main().catch((e: unknown) => {
  console.error(`bench: ${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
