/**
 * `npm run bench`: airlock and CNCF Distribution side by side, in one run, on 127.0.0.1 only.
 *
 * Everything runs against the same upstream: Distribution with token auth behind a byte-counting
 * proxy (test/helpers/upstream.ts). The peer is Distribution in proxy mode (`proxy: remoteurl`)
 * for the pull-through cases, and Distribution serving the same directory for the plain-registry
 * cases. The offline-shipping cases name another peer: `skopeo sync` of the same image list for
 * `airlock prefetch`, and tar plus sha256sum over the same bytes for `freeze` and `import`.
 * The fleet case runs three replicas of each on one S3 bucket (Ceph's radosgw, started only when
 * that case is selected): airlock `serve` processes sharing fill leases against Distribution's
 * proxy mode with its s3 driver; both stream blobs through the replica (Distribution's default
 * redirect to the bucket is turned off), and again with both redirecting.
 * Each case runs ≥3 times (cold stores for cold cases), alternating who goes first, and
 * reports min/median/max and airlock ÷ Distribution of the medians. It asserts nothing.
 *
 *   npm run bench              full run (≈10–15 min on 2 cores)
 *   npm run bench -- --quick   small sizes and short loads (≈2 min)
 *   npm run bench -- --smoke   tiny sizes, one repetition: only checks that the script runs (tests)
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Pool, request } from 'undici';
import { DISTRIBUTION_BIN, startDistribution, type Distribution } from '../test/helpers/distribution.js';
import { generateImage, generateIndex, type GeneratedImage } from '../test/helpers/images.js';
import { freePort } from '../test/helpers/ports.js';
import { NODE_FLAGS } from '../test/helpers/cli.js';
import { radosgwClient, startRadosgw } from '../test/helpers/radosgw.js';
import { skopeoCopy } from '../test/helpers/skopeo.js';
import { READER, mirrorUpstreams, startTestUpstream, type TestUpstream } from '../test/helpers/upstream.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');
const smoke = process.argv.includes('--smoke');
const quick = smoke || process.argv.includes('--quick');
const resultsDir = process.env.BENCH_RESULTS_DIR ?? path.join(here, 'results');
/** `--case TEXT`: run only the cases whose name contains TEXT (for profiling one path). */
const only = process.argv.includes('--case') ? process.argv[process.argv.indexOf('--case') + 1] : undefined;
const MiB = 2 ** 20;

const S = smoke
  ? { big: 2 * MiB, concurrentImage: 1 * MiB, small: 5, smallSize: 1024, reps: 1, loadSeconds: 0.3, connections: 4, concurrency: 3 }
  : quick
  ? { big: 24 * MiB, concurrentImage: 4 * MiB, small: 50, smallSize: 8 * 1024, reps: 3, loadSeconds: 2, connections: 32, concurrency: 16 }
  : { big: 512 * MiB, concurrentImage: 64 * MiB, small: 50, smallSize: 32 * 1024, reps: 3, loadSeconds: 5, connections: 32, concurrency: 16 };
/** The uplink of the shaped cold-pull case, bytes per second (800 Mbit/s; 400 for the small sizes). */
const LINK = quick ? 50e6 : 100e6;

interface Stats { min: number; median: number; max: number; runs: number[] }
interface CaseResult { case: string; unit: string; better: 'higher' | 'lower'; airlock: Stats; distribution: Stats; ratio: number; target?: string; note?: string; peer?: string }
interface Extra { case: string; value: string; target?: string }

function stats(runs: number[]): Stats {
  const s = [...runs].sort((a, b) => a - b);
  return { min: s[0]!, median: s[Math.floor(s.length / 2)]!, max: s[s.length - 1]!, runs };
}

interface Mirror { name: 'airlock' | 'distribution'; url: string; host: string; pid?: number; stop(): Promise<void>; logs?(): string }

async function waitReady(url: string, ms: number, gone: () => boolean = () => false): Promise<void> {
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

let work = '';

/** `extra` gives more config lines for each attempt (the fleet's port is picked per attempt too). */
async function startAirlockProcess(root: string, upstream?: TestUpstream, extra: () => Promise<string[]> = async () => []): Promise<Mirror> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startAirlockOnce(root, await freePort(), upstream, await extra());
    } catch (e) {
      // Another program took the port between the check and the bind: try another one.
      if (attempt >= 3 || !(e instanceof PortTaken)) throw e;
    }
  }
}

class PortTaken extends Error {}

/** SIGTERM, and wait until the process has exited. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await done;
}

async function startAirlockOnce(root: string, port: number, upstream: TestUpstream | undefined, extra: string[]): Promise<Mirror> {
  const cfg = path.join(work, `airlock-${port}.yml`);
  // `extra` follows storage.root: its first lines may be more storage keys.
  const lines = [`listen: "127.0.0.1:${port}"`, `storage:\n  root: ${root}`, ...extra, 'log:\n  level: warn'];
  if (upstream) lines.push(mirrorUpstreams(upstream));
  await writeFile(cfg, `${lines.join('\n')}\n`);
  // AIRLOCK_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles each airlock process.
  const nodeArgs = (process.env.AIRLOCK_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // AIRLOCK_ENV="NAME=value …" adds environment variables for the airlock processes only.
  const extraEnv = Object.fromEntries((process.env.AIRLOCK_ENV ?? '').split(' ').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const child = spawn(process.execPath, [...NODE_FLAGS, ...nodeArgs, path.join(repoRoot, 'dist/cli/main.js'), 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...extraEnv } });
  // Its error log lines (level warn and up are all it writes) tell which side failed a case.
  child.stdout.on('data', (b: Buffer) => process.stderr.write(b.toString().split('\n').filter(Boolean).map((l) => `airlock ${port}: ${l}\n`).join('')));
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
    process.stderr.write(b);
  });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, 15_000, () => child.exitCode !== null);
  if (child.exitCode !== null) {
    if (/port is in use/.test(stderr)) throw new PortTaken(stderr.trim());
    throw new Error(`airlock exited with ${child.exitCode}: ${stderr.trim()}`);
  }
  return {
    name: 'airlock', url, host: `127.0.0.1:${port}`, pid: child.pid,
    stop: () => stopChild(child),
  };
}

async function startDistributionMirror(root: string, upstream?: TestUpstream): Promise<Mirror> {
  const d = await startDistribution({ root, ...(upstream ? { proxy: { remoteUrl: upstream.proxy.url, username: READER.user, password: READER.password } } : {}) });
  return { name: 'distribution', url: d.url, host: d.host, pid: d.pid, stop: () => d.stop(), logs: () => d.logs() };
}

const starters = { airlock: startAirlockProcess, distribution: startDistributionMirror };

/**
 * A plain TCP relay in its own Node process: bytes in, bytes out, no HTTP. Put where a mirror
 * sits, it shows what one more process on the path costs by itself on this machine: the floor
 * under any mirror's cold pull, against the same direct pull. With `storeDir` it also does the
 * two things no mirror can skip: it hashes every byte that comes back from the upstream
 * (sha256) and writes it to a file (1 MiB writes behind, as airlock's fill does), still
 * without parsing HTTP.
 */
async function startRelay(target: string, storeDir?: string): Promise<{ host: string; pid: number | undefined; stop: () => Promise<void> }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const script = `
    const net = require('node:net');
    const { createHash } = require('node:crypto');
    const fs = require('node:fs/promises');
    const storeDir = ${JSON.stringify(storeDir ?? '')};
    let n = 0;
    const server = net.createServer((c) => {
      const u = net.connect(${port}, ${JSON.stringify(host)});
      c.pipe(u);
      c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
      if (!storeDir) { u.pipe(c); return; }
      const hash = createHash('sha256');
      const file = storeDir + '/' + n++;
      const opened = fs.open(file, 'w');
      let written = Promise.resolve();
      let batch = [];
      let batchBytes = 0;
      const flush = () => {
        const bufs = batch;
        batch = [];
        batchBytes = 0;
        written = written.then(async () => { await (await opened).writev(bufs); });
      };
      u.on('data', (b) => {
        hash.update(b);
        batch.push(b);
        batchBytes += b.length;
        if (batchBytes >= 1 << 20) flush();
        if (!c.write(b)) { u.pause(); c.once('drain', () => u.resume()); }
      });
      u.on('end', () => {
        flush();
        hash.digest();
        c.end();
        written.then(async () => { await (await opened).close(); await fs.rm(file); });
      });
    });
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const listening = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (b: Buffer) => resolve(Number(b.toString().trim())));
    child.once('exit', (code) => reject(new Error(`the relay exited with ${code}`)));
  });
  return {
    host: `127.0.0.1:${listening}`,
    pid: child.pid,
    stop: () => stopChild(child),
  };
}

/** CPU seconds every process of the machine has used so far (user, nice, system, irq, softirq), from /proc/stat. */
async function machineCpuSeconds(): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0)) / 100;
}

/** CPU seconds (user, system) a process has used so far, from /proc/<pid>/stat. */
async function cpuSeconds(pid: number | undefined): Promise<{ user: number; system: number }> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / 100, system: Number(f[12]) / 100 };
  } catch {
    return { user: NaN, system: NaN };
  }
}

async function peakRssMiB(pid: number | undefined): Promise<number> {
  if (!pid) return NaN;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]) / 1024;
  } catch {
    return NaN;
  }
}

let pullN = 0;
/** skopeo pull into tmpfs (so the client's disk is not what we measure); seconds. */
async function timedPull(host: string, ref: string, creds?: string): Promise<number> {
  const dest = path.join('/dev/shm', `airlock-bench-${process.pid}-${pullN++}`);
  const t0 = process.hrtime.bigint();
  try {
    await skopeoCopy(`docker://${host}/${ref}`, `dir:${dest}`, { all: true, timeoutMs: 600_000, ...(creds ? { srcCreds: creds } : {}) });
    return Number(process.hrtime.bigint() - t0) / 1e9;
  } finally {
    await rm(dest, { recursive: true, force: true });
  }
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

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json';

/** Closed-loop load: `connections` workers, each one request at a time, for a bounded time. */
async function load(m: Mirror, urlPath: string, method: 'GET' | 'HEAD'): Promise<number> {
  const pool = new Pool(m.url, { connections: S.connections, pipelining: 1 });
  let ok = 0;
  let bad = 0;
  const end = Date.now() + S.loadSeconds * 1000;
  const worker = async () => {
    while (Date.now() < end) {
      const r = await pool.request({ path: urlPath, method, headers: { accept: ACCEPT } });
      await r.body.dump();
      if (r.statusCode === 200) ok++;
      else bad++;
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: S.connections }, worker));
  const secs = (Date.now() - t0) / 1000;
  await pool.close();
  if (bad > 0) throw new Error(`${m.name}: ${bad} non-200 answers on ${method} ${urlPath}`);
  return ok / secs;
}

/** Writes dirty pages back first, so no case pays for an earlier case's writeback. */
const settle = () => promisify(execFile)('sync');

const results: CaseResult[] = [];
const extras: Extra[] = [];

async function both(name: string, unit: string, better: 'higher' | 'lower', target: string, fn: (who: 'airlock' | 'distribution', rep: number) => Promise<number>): Promise<void> {
  await against(name, undefined, unit, better, target, (who, rep) => fn(who === 'peer' ? 'distribution' : 'airlock', rep));
}

/** Runs a case S.reps times for airlock and its peer (Distribution unless `peer` names another tool), alternating who goes first. */
async function against(name: string, peer: string | undefined, unit: string, better: 'higher' | 'lower', target: string, fn: (who: 'airlock' | 'peer', rep: number) => Promise<number>): Promise<void> {
  if (only && !name.includes(only)) return;
  await settle();
  const runs: Record<'airlock' | 'peer', number[]> = { airlock: [], peer: [] };
  for (let i = 0; i < S.reps; i++) {
    for (const who of i % 2 ? (['airlock', 'peer'] as const) : (['peer', 'airlock'] as const)) runs[who].push(await fn(who, i));
  }
  record(name, peer, unit, better, target, runs.airlock, runs.peer);
}

function record(name: string, peer: string | undefined, unit: string, better: 'higher' | 'lower', target: string, airlockRuns: number[], peerRuns: number[]): void {
  const a = stats(airlockRuns);
  const d = stats(peerRuns);
  results.push({ case: name, unit, better, airlock: a, distribution: d, ratio: a.median / d.median, target, ...(peer ? { peer } : {}) });
  console.error(`bench: ${name}: airlock ${a.median.toFixed(3)} ${unit}, ${peer ?? 'distribution'} ${d.median.toFixed(3)} ${unit}, ratio ${(a.median / d.median).toFixed(2)}`);
}

const sh = promisify(execFile);
async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function airlockCli(args: string[]): Promise<void> {
  await sh(process.execPath, [path.join(repoRoot, 'dist/cli/main.js'), ...args], { maxBuffer: 64 << 20, timeout: 1_800_000 });
}

/**
 * Push throughput of one big blob to a plain registry (a fresh store each time): POST then PUT
 * with the whole body ("monolithic", the form both accept), and in 8 MiB PATCHes.
 */
async function pushCases(file: string, digest: string, size: number): Promise<void> {
  const CHUNK = 8 * MiB;
  const pushOnce = async (m: Mirror, chunked: boolean): Promise<number> => {
    const t0 = process.hrtime.bigint();
    const post = await request(`${m.url}/v2/bench/pushed/blobs/uploads/`, { method: 'POST' });
    await post.body.dump();
    let loc = new URL(String(post.headers.location), m.url).toString();
    if (chunked) {
      for (let off = 0; off < size; off += CHUNK) {
        const end = Math.min(size, off + CHUNK) - 1;
        const r = await request(loc, {
          method: 'PATCH',
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${off}-${end}`, 'content-length': String(end - off + 1) },
          body: createReadStream(file, { start: off, end, highWaterMark: MiB }),
        });
        await r.body.dump();
        if (r.statusCode !== 202) throw new Error(`${m.name}: PATCH answered ${r.statusCode}`);
        loc = new URL(String(r.headers.location), m.url).toString();
      }
      const put = await request(`${loc}${loc.includes('?') ? '&' : '?'}digest=${digest}`, { method: 'PUT' });
      await put.body.dump();
      if (put.statusCode !== 201) throw new Error(`${m.name}: PUT answered ${put.statusCode}`);
    } else {
      const put = await request(`${loc}${loc.includes('?') ? '&' : '?'}digest=${digest}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
        body: createReadStream(file, { highWaterMark: MiB }),
      });
      await put.body.dump();
      if (put.statusCode !== 201) throw new Error(`${m.name}: PUT answered ${put.statusCode}`);
    }
    return size / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9);
  };
  for (const chunked of [false, true]) {
    await both(`push ${(size / MiB).toFixed(0)} MiB blob, ${chunked ? '8 MiB chunks' : 'monolithic'} (plain registry)`, 'MB/s', 'higher', '≥ 1.0', async (who) => {
      const root = await mkdtemp(path.join(work, `push-${who}-`));
      const m = await starters[who](root);
      try {
        return await pushOnce(m, chunked);
      } finally {
        await m.stop();
        await rm(root, { recursive: true, force: true });
      }
    });
  }
}

/**
 * gc over a store of GC_BLOBS blobs, half of them used by 100 repositories' manifests: `airlock gc`
 * against Distribution's `registry garbage-collect`, each on its own copy of the same layout.
 */
async function gcCase(): Promise<void> {
  const GC_BLOBS = smoke ? 400 : 10_000;
  const template = await mkdtemp(path.join(work, 'gc-template-'));
  const v2 = path.join(template, 'docker/registry/v2');
  const digests: string[] = [];
  for (let i = 0; i < GC_BLOBS; i++) {
    const data = randomBytes(64 + (i % 512));
    const hex = createHash('sha256').update(data).digest('hex');
    await mkdir(path.join(v2, 'blobs/sha256', hex.slice(0, 2), hex), { recursive: true });
    await writeFile(path.join(v2, 'blobs/sha256', hex.slice(0, 2), hex, 'data'), data);
    digests.push(`sha256:${hex}`);
  }
  const repos = 100;
  const used = digests.slice(0, GC_BLOBS / 2);
  const perRepo = Math.floor(used.length / repos);
  const link = async (p: string, d: string) => {
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, d);
  };
  for (let r = 0; r < repos; r++) {
    const mine = used.slice(r * perRepo, (r + 1) * perRepo);
    const [config, ...layers] = mine;
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 1 },
      layers: layers.map((d) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: d, size: 1 })),
    }));
    const hex = createHash('sha256').update(manifest).digest('hex');
    await mkdir(path.join(v2, 'blobs/sha256', hex.slice(0, 2), hex), { recursive: true });
    await writeFile(path.join(v2, 'blobs/sha256', hex.slice(0, 2), hex, 'data'), manifest);
    const repo = path.join(v2, 'repositories', `gc/r${r}`);
    await link(path.join(repo, '_manifests/revisions/sha256', hex, 'link'), `sha256:${hex}`);
    await link(path.join(repo, '_manifests/tags/v1/current/link'), `sha256:${hex}`);
    await link(path.join(repo, '_manifests/tags/v1/index/sha256', hex, 'link'), `sha256:${hex}`);
    for (const d of mine) await link(path.join(repo, '_layers/sha256', d.slice(7), 'link'), d);
  }
  await both(`gc, ${GC_BLOBS} blobs (half unused), 100 repositories`, 's', 'lower', '≤ 1.0', async (who) => {
    const root = await mkdtemp(path.join(work, `gc-${who}-`));
    await sh('cp', ['-a', `${template}/.`, root]);
    await settle();
    try {
      if (who === 'airlock') {
        const cfg = path.join(work, `gc-${pullN++}.yml`);
        await writeFile(cfg, `storage:\n  root: ${root}\nlog:\n  level: warn\n`);
        return await timed(() => airlockCli(['gc', '--config', cfg, '--grace', '0s']));
      }
      const cfg = path.join(work, `gc-dist-${pullN++}.yml`);
      await writeFile(cfg, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${root}\n`);
      return await timed(() => sh(DISTRIBUTION_BIN, ['garbage-collect', cfg], { maxBuffer: 256 << 20 }));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
  await rm(template, { recursive: true, force: true });
}

/**
 * Offline shipping: `airlock prefetch` against `skopeo sync` of the same list from the same
 * upstream; `airlock freeze` / `airlock import` against tar plus sha256sum over the same bytes
 * (both sides end with their output on disk: airlock fsyncs, the peer runs sync).
 */
async function offlineCases(up: TestUpstream, images: Array<{ repo: string; tag: string }>, bytes: number): Promise<void> {
  const concurrency = 4;
  const creds = { user: READER.user, password: READER.password };
  const cfgFor = async (root: string) => {
    const f = path.join(work, `prefetch-${pullN++}.yml`);
    const list = images.map((i) => `    - ${i.repo}:${i.tag}`).join('\n');
    await writeFile(f, [`storage:\n  root: ${root}`, 'log:\n  level: warn', 'upstreams:', '  docker.io:', `    url: ${up.proxy.url}`, `    username: ${creds.user}`, `    password: ${creds.password}`, 'prefetch:', `  concurrency: ${concurrency}`, '  images:', list].join('\n') + '\n');
    return f;
  };
  const syncYaml = path.join(work, 'sync.yml');
  const byRepo = new Map<string, string[]>();
  for (const i of images) byRepo.set(i.repo, [...(byRepo.get(i.repo) ?? []), i.tag]);
  await writeFile(syncYaml, [`${up.proxy.host}:`, '  tls-verify: false', '  credentials:', `    username: ${creds.user}`, `    password: ${creds.password}`, '  images:', ...[...byRepo].map(([r, t]) => `    ${r}: [${t.join(', ')}]`)].join('\n') + '\n');
  const mb = bytes / 1e6;
  let kept = '';
  await against(`prefetch ${images.length} images (${(bytes / MiB).toFixed(0)} MiB), cold`, 'skopeo sync', 's', 'lower', '≤ 1.0', async (who) => {
    const dest = await mkdtemp(path.join(work, `prefetch-${who}-`));
    try {
      if (who === 'airlock') {
        const cfg = await cfgFor(dest);
        const t = await timed(() => airlockCli(['prefetch', '--config', cfg]));
        if (!kept) {
          kept = await mkdtemp(path.join(work, 'frozen-src-'));
          await rm(kept, { recursive: true });
          await sh('mv', [dest, kept]);
        }
        return t;
      }
      return await timed(() => sh('skopeo', ['sync', '--all', '--preserve-digests', '--retry-times=0', '--src', 'yaml', '--dest', 'dir', '--scoped', syncYaml, dest], { maxBuffer: 64 << 20, timeout: 1_800_000 }));
    } finally {
      await rm(dest, { recursive: true, force: true });
    }
  });
  if (!kept) return;
  const srcCfg = await cfgFor(kept);
  await against(`freeze (${(bytes / MiB).toFixed(0)} MiB store to a bundle)`, 'tar + sha256sum', 'MB/s', 'higher', '≥ 0.9', async (who) => {
    const out = path.join(work, `bundle-${who}.tar`);
    try {
      if (who === 'airlock') return mb / (await timed(() => airlockCli(['freeze', '--config', srcCfg, '--out', out])));
      return mb / (await timed(() => sh('bash', ['-c', `set -e; cd "${kept}"; find docker -type f -print0 | xargs -0 sha256sum > SHA256SUMS; tar -cf "${out}" docker SHA256SUMS; sync "${out}"`])));
    } finally {
      await rm(out, { force: true });
    }
  });
  const bundle = path.join(work, 'bundle-import.tar');
  await airlockCli(['freeze', '--config', srcCfg, '--out', bundle]);
  await against(`import (${(bytes / MiB).toFixed(0)} MiB bundle into an empty store)`, 'tar + sha256sum', 'MB/s', 'higher', '≥ 0.9', async (who) => {
    const dest = await mkdtemp(path.join(work, `import-${who}-`));
    try {
      if (who === 'airlock') {
        const cfg = path.join(work, `import-${pullN++}.yml`);
        await writeFile(cfg, `storage:\n  root: ${dest}\nlog:\n  level: warn\n`);
        return mb / (await timed(() => airlockCli(['import', '--config', cfg, bundle])));
      }
      return mb / (await timed(() => sh('bash', ['-c', `set -e; tar -xf "${bundle}" -C "${dest}"; cd "${dest}"; sha256sum -c --quiet SHA256SUMS; sync -f .`])));
    } finally {
      await rm(dest, { recursive: true, force: true });
    }
  });
  await rm(bundle, { force: true });
  await rm(kept, { recursive: true, force: true });
}

type Radosgw = Awaited<ReturnType<typeof startRadosgw>>;

/** Replicas of one mirror on one bucket, pulled from side by side. */
interface Fleet { hosts: string[]; pids: Array<number | undefined>; stop(): Promise<void>; logs(): string }

/** Stops every started replica, even when some failed to stop. */
async function stopAll(stops: Array<() => Promise<void>>): Promise<void> {
  const failed = (await Promise.allSettled(stops.map((s) => s()))).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** A `serve` process, SIGTERM then (after 10 s) SIGKILL; resolves once it has exited. */
/** `count` airlock serve processes on `bucket` (prefix airlock), each with its fleet port, leases of 5 s. */
async function startAirlockFleet(count: number, gw: Radosgw, bucket: string, up: TestUpstream, redirect: boolean): Promise<Fleet> {
  const replicas: Mirror[] = [];
  // Their spool directories.
  const dir = await mkdtemp(path.join(work, 'fleet-airlock-'));
  const stop = async () => {
    try {
      await stopAll(replicas.map((r) => () => r.stop()));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  const lines = async () => {
    const fleetPort = await freePort();
    return [
      '  driver: s3',
      `  s3: { endpoint: "${gw.endpoint}", region: ${gw.region}, bucket: ${bucket}, prefix: airlock, accessKey: "${gw.accessKey}", secretKey: "${gw.secretKey}" }`,
      `  redirect: ${redirect}`,
      `fleet: { listen: "127.0.0.1:${fleetPort}", advertise: "http://127.0.0.1:${fleetPort}", leaseTTL: 5s, secret: "bench-fleet-secret-0123456789" }`,
    ];
  };
  try {
    for (let i = 0; i < count; i++) replicas.push(await startAirlockProcess(await mkdtemp(path.join(dir, `spool-${i}-`)), up, lines));
  } catch (e) {
    await stop();
    throw e;
  }
  // Their log lines are on stderr already (startAirlockOnce forwards them).
  return { hosts: replicas.map((r) => r.host), pids: replicas.map((r) => r.pid), stop, logs: () => '' };
}

/** `count` Distribution registries in proxy mode, s3 driver on `bucket` under /distribution. */
async function startDistributionFleet(count: number, gw: Radosgw, bucket: string, up: TestUpstream, redirect: boolean): Promise<Fleet> {
  const replicas: Distribution[] = [];
  const stop = () => stopAll(replicas.map((d) => () => d.stop()));
  try {
    for (let i = 0; i < count; i++) {
      replicas.push(await startDistribution({
        root: work, // unused with s3
        s3: { endpoint: gw.endpoint, region: gw.region, bucket, rootdirectory: '/distribution', accessKey: gw.accessKey, secretKey: gw.secretKey },
        proxy: { remoteUrl: up.proxy.url, username: READER.user, password: READER.password },
        // Distribution redirects blob GETs to its s3 driver's URLs unless told not to.
        redirectDisabled: !redirect,
      }));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { hosts: replicas.map((d) => d.host), pids: replicas.map((d) => d.pid), stop, logs: () => replicas.map((d) => `distribution ${d.host}:\n${d.logs().slice(-4000)}`).join('\n') };
}

/**
 * Fleet: FLEET_REPLICAS replicas on one bucket of a real object store (Ceph's radosgw, started
 * here and only when the case is selected), FLEET_CLIENTS skopeo pulls per replica at once. airlock:
 * `serve` processes sharing fill leases (one upstream fetch per blob for the fleet); Distribution:
 * proxy-mode registries with its s3 driver on the same radosgw. Each repetition takes a fresh
 * bucket (airlock under prefix airlock, Distribution under /distribution): a cold round, the upstream
 * blob bytes of that round, then the same pulls again (warm).
 */
const FLEET_REPLICAS = 3;
const FLEET_CLIENTS = 2;
async function fleetCase(up: TestUpstream, ref: string, imageBytes: number, redirect = false): Promise<void> {
  const label = `${FLEET_REPLICAS} replicas × ${FLEET_CLIENTS} clients, ${(imageBytes / MiB).toFixed(0)} MiB image${redirect ? ', blobs redirected to the bucket' : ''}`;
  const coldName = `fleet cold pull, ${label}`;
  const warmName = `fleet warm pull, ${label}`;
  if (only && !coldName.includes(only) && !warmName.includes(only)) return;
  console.error('bench: fleet: starting radosgw…');
  const gwDir = await mkdtemp(path.join(work, 'radosgw-'));
  let gw: Radosgw | undefined;
  try {
    gw = await startRadosgw({ dir: gwDir });
    // radosgw creates its bucket data pool on the first object written: not in anyone's cold round.
    await gw.createBucket('bench-fleet-warmup');
    const s3 = radosgwClient(gw);
    try {
      await s3.send(new PutObjectCommand({ Bucket: 'bench-fleet-warmup', Key: 'warmup', Body: randomBytes(MiB) }));
    } finally {
      s3.destroy();
    }
    await settle();
    const cold: Record<'airlock' | 'distribution', number[]> = { airlock: [], distribution: [] };
    const warm: Record<'airlock' | 'distribution', number[]> = { airlock: [], distribution: [] };
    const bytes: Record<'airlock' | 'distribution', number[]> = { airlock: [], distribution: [] };
    // Where a warm round's time goes: CPU seconds of the replicas, and of the whole machine.
    const warmCpu: Record<'airlock' | 'distribution', Array<{ replicas: number; machine: number }>> = { airlock: [], distribution: [] };
    for (let i = 0; i < S.reps; i++) {
      const bucket = `bench-fleet-${i}`;
      await gw.createBucket(bucket);
      for (const who of i % 2 ? (['airlock', 'distribution'] as const) : (['distribution', 'airlock'] as const)) {
        const fleet = await (who === 'airlock' ? startAirlockFleet : startDistributionFleet)(FLEET_REPLICAS, gw, bucket, up, redirect);
        try {
          const round = () => timed(() => Promise.all(fleet.hosts.flatMap((h) => Array.from({ length: FLEET_CLIENTS }, () => timedPull(h, ref)))));
          up.proxy.reset();
          cold[who].push(await round());
          bytes[who].push(up.proxy.blobBytes() / imageBytes);
          const replicaCpu = async () => (await Promise.all(fleet.pids.map(cpuSeconds))).reduce((n, c) => n + c.user + c.system, 0);
          const [r0, m0] = [await replicaCpu(), await machineCpuSeconds()];
          warm[who].push(await round());
          warmCpu[who].push({ replicas: (await replicaCpu()) - r0, machine: (await machineCpuSeconds()) - m0 });
        } catch (e) {
          await new Promise((r) => setTimeout(r, 500)); // the replicas' last log lines
          throw new Error(`${who} fleet (${fleet.hosts.join(', ')}): ${(e as Error).message}\n${fleet.logs()}`, { cause: e });
        } finally {
          await fleet.stop();
        }
      }
    }
    record(coldName, undefined, 's', 'lower', '≤ 1.0', cold.airlock, cold.distribution);
    record(warmName, undefined, 's', 'lower', '≤ 1.0', warm.airlock, warm.distribution);
    const cpuMedian = (who: 'airlock' | 'distribution', k: 'replicas' | 'machine') => stats(warmCpu[who].map((c) => c[k])).median.toFixed(2);
    extras.push({
      case: `fleet warm round (${label}): CPU seconds of the replicas / of the whole machine (median)`,
      value: `airlock ${cpuMedian('airlock', 'replicas')} / ${cpuMedian('airlock', 'machine')}, Distribution ${cpuMedian('distribution', 'replicas')} / ${cpuMedian('distribution', 'machine')}`,
    });
    if (!redirect) extras.push({ case: `fleet upstream bytes ÷ image (cold round, ${FLEET_REPLICAS} replicas × ${FLEET_CLIENTS} clients)`, value: `airlock ${stats(bytes.airlock).median.toFixed(2)}, Distribution ${stats(bytes.distribution).median.toFixed(2)}`, target: '≤ 1.05' });
  } finally {
    await gw?.stop();
    await rm(gwDir, { recursive: true, force: true });
  }
}

async function coldMirror<T>(who: 'airlock' | 'distribution', up: TestUpstream, fn: (m: Mirror) => Promise<T>): Promise<T> {
  const root = await mkdtemp(path.join(work, `${who}-`));
  const m = await starters[who](root, up);
  try {
    return await fn(m);
  } catch (e) {
    // Say which side failed, with what it logged (airlock's error lines are already on stderr).
    throw new Error(`${m.name} on ${m.host}: ${(e as Error).message}${m.logs ? `\n${m.name} log: ${m.logs().slice(-4000)}` : ''}`, { cause: e });
  } finally {
    await m.stop();
    await rm(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-bench-'));
  let up: TestUpstream | undefined;
  try {
    console.error(`bench: ${quick ? 'quick' : 'full'} run; generating images…`);
    up = await startTestUpstream();
    const big = await generateImage(path.join(work, 'g-big'), { layers: 1, layerSize: S.big, format: 'oci' });
    const conc = await generateImage(path.join(work, 'g-conc'), { layers: 4, layerSize: S.concurrentImage / 4, format: 'oci' });
    const small = await generateImage(path.join(work, 'g-small'), { layers: S.small, layerSize: S.smallSize, format: 'docker' });
    const multi = await generateIndex(path.join(work, 'g-multi'), { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }], layers: 2, layerSize: 256 * 1024, format: 'oci' });
    await up.push(big, 'bench/big', 'v1');
    await up.push(conc, 'bench/conc', 'v1');
    await up.push(small, 'bench/small', 'v1');
    await up.push(multi, 'bench/multi', 'v1');
    await rm(path.join(work, 'g-big'), { recursive: true, force: true });
    const layerBytes = (img: GeneratedImage) => img.blobs.reduce((s, b) => s + b.size, 0);
    const creds = `${READER.user}:${READER.password}`;

    // ---- pull-through: airlock vs Distribution's proxy mode, same upstream ------------------
    // Direct pulls are taken throughout the cold-pull case, beside the pulls they are compared
    // with: three taken first and alone, right after the images were generated and pushed, once
    // measured 4.5 s against 2.4-2.7 s for the same pull minutes later.
    const direct: number[] = [];
    const directPull = async () => {
      direct.push(await timedPull(up!.proxy.host, 'bench/big:v1', creds));
    };
    await settle();
    await directPull();

    const coldBytes: Record<string, number[]> = { airlock: [], distribution: [] };
    const coldCpu: Record<string, number[]> = { airlock: [], distribution: [] };
    const coldSys: Record<string, number[]> = { airlock: [], distribution: [] };
    await both(`cold pull, ${S.big / MiB} MiB image (skopeo)`, 's', 'lower', '≤ 0.75; ≤ 1.1× direct', (who) =>
      coldMirror(who, up!, async (m) => {
        await directPull();
        up!.proxy.reset();
        const cpu0 = await cpuSeconds(m.pid);
        const t = await timedPull(m.host, 'bench/big:v1');
        const cpu1 = await cpuSeconds(m.pid);
        coldCpu[who]!.push(cpu1.user + cpu1.system - cpu0.user - cpu0.system);
        coldSys[who]!.push(cpu1.system - cpu0.system);
        coldBytes[who]!.push(up!.proxy.blobBytes() / layerBytes(big));
        return t;
      }),
    );
    const coldA = results.find((r) => r.case.startsWith('cold pull,'));
    if (coldA) {
      // The same pull through a bare TCP relay where the mirror sits (what one more process on
      // the path costs on these cores), and through one that also hashes and stores the bytes
      // (what any mirror must do at least, before it parses HTTP); each round beside a direct pull.
      const relayed: Record<'bare' | 'storing', { secs: number[]; cpu: number[] }> = { bare: { secs: [], cpu: [] }, storing: { secs: [], cpu: [] } };
      const relayStore = await mkdtemp(path.join(work, 'relay-'));
      const relays = { bare: await startRelay(up.proxy.host), storing: await startRelay(up.proxy.host, relayStore) };
      try {
        for (let i = 0; i < S.reps; i++) {
          for (const kind of ['bare', 'storing'] as const) {
            const relay = relays[kind];
            const cpu0 = await cpuSeconds(relay.pid);
            relayed[kind].secs.push(await timedPull(relay.host, 'bench/big:v1', creds));
            const cpu1 = await cpuSeconds(relay.pid);
            relayed[kind].cpu.push(cpu1.user + cpu1.system - cpu0.user - cpu0.system);
          }
          await directPull();
        }
      } finally {
        await relays.bare.stop();
        await relays.storing.stop();
        await rm(relayStore, { recursive: true, force: true });
      }
      const directMedian = stats(direct).median;
      extras.push({ case: `direct pull from the upstream (${S.big / MiB} MiB, through the same proxy hop)`, value: `${directMedian.toFixed(2)} s median of ${direct.length}, taken between the other pulls` });
      extras.push({ case: 'cold pull: airlock ÷ direct pull', value: (coldA.airlock.median / directMedian).toFixed(2), target: '≤ 1.1' });
      extras.push({ case: 'cold pull: Distribution proxy ÷ direct pull', value: (coldA.distribution.median / directMedian).toFixed(2) });
      const relayLine = (r: { secs: number[]; cpu: number[] }) => `${(stats(r.secs).median / directMedian).toFixed(2)} (${stats(r.secs).median.toFixed(2)} s; the relay used ${stats(r.cpu).median.toFixed(2)} CPU seconds)`;
      extras.push({ case: 'pull through a bare TCP relay in the mirror\'s place (no HTTP, no hashing, no store) ÷ direct pull', value: relayLine(relayed.bare) });
      extras.push({ case: 'pull through a TCP relay that also hashes and stores every byte (no HTTP) ÷ direct pull', value: relayLine(relayed.storing) });
      // What bounds a cold pull on a small machine: the mirror's own CPU, on cores that the
      // client, the upstream and the proxy hop already keep busy during a direct pull.
      extras.push({ case: 'cold pull: CPU seconds used by the mirror process (median)', value: `airlock ${stats(coldCpu.airlock!).median.toFixed(2)} (system ${stats(coldSys.airlock!).median.toFixed(2)}), Distribution ${stats(coldCpu.distribution!).median.toFixed(2)} (system ${stats(coldSys.distribution!).median.toFixed(2)})` });
      extras.push({ case: 'cold pull: upstream blob bytes ÷ image size', value: `airlock ${stats(coldBytes.airlock!).median.toFixed(2)}, Distribution ${stats(coldBytes.distribution!).median.toFixed(2)}`, target: '≤ 1.02' });
    }

    // The same cold pull where the hop to the upstream is a link of LINK bytes/s shared by every
    // connection across it: a site's uplink, slower than its disks and cores. This is where a
    // mirror's own upstream traffic shows (Distribution's proxy fetches a blob for the client and
    // again for its store, over the same link); on loopback it is nearly free.
    const linkName = `cold pull, ${S.big / MiB} MiB image, over a ${(LINK * 8) / 1e6} Mbit/s uplink (skopeo)`;
    if (!only || linkName.includes(only)) {
      const directLink: number[] = [];
      for (let i = 0; i < S.reps; i++) {
        up.proxy.reset();
        up.proxy.faults.link = LINK;
        directLink.push(await timedPull(up.proxy.host, 'bench/big:v1', creds));
      }
      up.proxy.reset();
      const linkBytes: Record<string, number[]> = { airlock: [], distribution: [] };
      await both(linkName, 's', 'lower', '≤ 0.75; ≤ 1.1× direct', (who) =>
        coldMirror(who, up!, async (m) => {
          up!.proxy.reset();
          up!.proxy.faults.link = LINK;
          try {
            return await timedPull(m.host, 'bench/big:v1');
          } finally {
            linkBytes[who]!.push(up!.proxy.blobBytes() / layerBytes(big));
            up!.proxy.reset();
          }
        }),
      );
      const linkA = results.find((r) => r.case === linkName);
      const directLinkMedian = stats(directLink).median;
      extras.push({ case: `direct pull over the ${(LINK * 8) / 1e6} Mbit/s uplink`, value: `${directLinkMedian.toFixed(2)} s median (${((layerBytes(big) / directLinkMedian) / 1e6).toFixed(0)} MB/s)` });
      if (linkA) {
        extras.push({ case: 'cold pull over the uplink: airlock ÷ direct pull', value: (linkA.airlock.median / directLinkMedian).toFixed(2), target: '≤ 1.1' });
        extras.push({ case: 'cold pull over the uplink: Distribution proxy ÷ direct pull', value: (linkA.distribution.median / directLinkMedian).toFixed(2) });
        extras.push({ case: 'cold pull over the uplink: upstream blob bytes ÷ image size', value: `airlock ${stats(linkBytes.airlock!).median.toFixed(2)}, Distribution ${stats(linkBytes.distribution!).median.toFixed(2)}`, target: '≤ 1.02' });
      }
    }

    // Warm: one mirror each, warmed once, then pulled S.reps times.
    const warm: Record<string, Mirror> = {};
    const warmRoots: string[] = [];
    for (const who of ['airlock', 'distribution'] as const) {
      const root = await mkdtemp(path.join(work, `warm-${who}-`));
      warmRoots.push(root);
      warm[who] = await starters[who](root, up);
      await timedPull(warm[who]!.host, 'bench/big:v1');
      await timedPull(warm[who]!.host, 'bench/small:v1');
      await timedPull(warm[who]!.host, 'bench/multi:v1');
    }
    await both(`warm pull, ${S.big / MiB} MiB image (skopeo)`, 's', 'lower', '≤ 1.0', (who) => timedPull(warm[who]!.host, 'bench/big:v1'));
    await both(`warm pull, ${S.small} small layers (skopeo)`, 's', 'lower', '≤ 1.0', (who) => timedPull(warm[who]!.host, 'bench/small:v1'));
    await both(`cold pull, ${S.small} small layers (skopeo)`, 's', 'lower', '≤ 1.0', (who) => coldMirror(who, up!, (m) => timedPull(m.host, 'bench/small:v1')));
    const bigLayer = big.blobs[1]!;
    await both(`warm blob GET, ${S.big / MiB} MiB`, 'MB/s', 'higher', '≥ 1.0', (who) => blobThroughput(warm[who]!, 'bench/big', bigLayer.digest, bigLayer.size));
    await both('warm manifest GET by tag, 32 connections', 'req/s', 'higher', '≥ 10', (who) => load(warm[who]!, '/v2/bench/multi/manifests/v1', 'GET'));
    await both('warm manifest GET by digest, 32 connections', 'req/s', 'higher', '≥ 1.5', (who) => load(warm[who]!, `/v2/bench/multi/manifests/${multi.manifestDigest}`, 'GET'));
    await both('warm manifest HEAD by tag, 32 connections', 'req/s', 'higher', '≥ 10', (who) => load(warm[who]!, '/v2/bench/multi/manifests/v1', 'HEAD'));
    for (const m of Object.values(warm)) await m.stop();

    // 16 concurrent cold pulls of one image: wall time, upstream bytes, peak RSS.
    const concBytes: Record<string, number[]> = { airlock: [], distribution: [] };
    const rss: Record<string, number[]> = { airlock: [], distribution: [] };
    await both(`${S.concurrency} concurrent cold pulls, ${S.concurrentImage / MiB} MiB image`, 's', 'lower', '≤ 0.8', (who) =>
      coldMirror(who, up!, async (m) => {
        up!.proxy.reset();
        const t0 = process.hrtime.bigint();
        await Promise.all(Array.from({ length: S.concurrency }, () => timedPull(m.host, 'bench/conc:v1')));
        const secs = Number(process.hrtime.bigint() - t0) / 1e9;
        concBytes[who]!.push(up!.proxy.blobBytes() / layerBytes(conc));
        rss[who]!.push(await peakRssMiB(m.pid));
        return secs;
      }),
    );
    if (concBytes.airlock!.length) extras.push({ case: `${S.concurrency} concurrent cold pulls: upstream blob bytes ÷ image size`, value: `airlock ${stats(concBytes.airlock!).median.toFixed(2)}, Distribution ${stats(concBytes.distribution!).median.toFixed(2)}`, target: '≤ 1.05' });
    if (rss.airlock!.length) extras.push({ case: `peak RSS during the concurrent case (MiB)`, value: `airlock ${stats(rss.airlock!).max.toFixed(0)}, Distribution ${stats(rss.distribution!).max.toFixed(0)}`, target: 'airlock ≤ 100' });

    // Three replicas on one bucket (radosgw), two clients each: cold and warm rounds, upstream bytes.
    await fleetCase(up, 'bench/conc:v1', layerBytes(conc));
    await fleetCase(up, 'bench/conc:v1', layerBytes(conc), true);

    // ---- plain registry: both serve the same directory (the store airlock wrote) ----------
    const plainRoot = await mkdtemp(path.join(work, 'plain-'));
    {
      const filler = await startAirlockProcess(plainRoot, up);
      await timedPull(filler.host, 'bench/multi:v1');
      await timedPull(filler.host, 'bench/big:v1');
      await filler.stop();
    }
    const plain = { airlock: await startAirlockProcess(plainRoot), distribution: await startDistributionMirror(plainRoot) };
    try {
      // One untimed GET each first: a long-running server is what operators run.
      for (const m of Object.values(plain)) await blobThroughput(m, 'bench/big', bigLayer.digest, bigLayer.size);
      await both(`plain registry: blob GET, ${S.big / MiB} MiB`, 'MB/s', 'higher', '≥ 1.0', (who) => blobThroughput(plain[who], 'bench/big', bigLayer.digest, bigLayer.size));
      await both('plain registry: manifest GET by tag, 32 connections', 'req/s', 'higher', '≥ 1.0', (who) => load(plain[who], '/v2/bench/multi/manifests/v1', 'GET'));
      await both('plain registry: manifest GET by digest, 32 connections', 'req/s', 'higher', '≥ 1.0', (who) => load(plain[who], `/v2/bench/multi/manifests/${multi.manifestDigest}`, 'GET'));
    } finally {
      await plain.airlock.stop();
      await plain.distribution.stop();
    }

    // ---- push and gc ---------------------------------------------------------------------------
    // The big layer's bytes, from the upstream's own store (the generated layout is gone by now).
    await pushCases(path.join(up.dir, 'root/docker/registry/v2/blobs/sha256', bigLayer.digest.slice(7, 9), bigLayer.digest.slice(7), 'data'), bigLayer.digest, bigLayer.size);
    await gcCase();

    // ---- offline shipping ----------------------------------------------------------------------
    const offlineImages = [{ repo: 'bench/big', tag: 'v1' }, { repo: 'bench/conc', tag: 'v1' }, { repo: 'bench/small', tag: 'v1' }, { repo: 'bench/multi', tag: 'v1' }];
    await offlineCases(up, offlineImages, layerBytes(big) + layerBytes(conc) + layerBytes(small) + layerBytes(multi));

    const machine = { nproc: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, cpu: os.cpus()[0]?.model, quick };
    const report = { createdAt: new Date().toISOString(), machine, sizes: S, results, extras };
    await mkdir(resultsDir, { recursive: true });
    await writeFile(path.join(resultsDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    const md = renderMarkdown(report);
    await writeFile(path.join(resultsDir, 'latest.md'), md);
    console.log(md);
  } finally {
    await up?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

function renderMarkdown(r: { createdAt: string; machine: Record<string, unknown>; results: CaseResult[]; extras: Extra[] }): string {
  const f = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
  const s = (x: Stats) => `${f(x.min)} / **${f(x.median)}** / ${f(x.max)}`;
  return [
    `# airlock bench (${r.machine.quick ? 'quick' : 'full'}), ${r.createdAt}`,
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

main().catch((e: unknown) => {
  console.error(`bench: ${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
