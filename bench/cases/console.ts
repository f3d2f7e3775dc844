/**
 * The web console (issue 21) on a store of 10,000 repositories and 100,000 blobs (written
 * directly in the layout, bench/lib/console-store.ts): how long the repository index takes to
 * build, the server time of the overview and of repository list queries (the request log's `ms`,
 * with the client's latency on loopback beside it) against the < 100 ms target, and what the
 * console costs the pull path: manifest GET load against the same build with `ui.enabled: false`
 * (with `--baseline`: the baseline build), on that store (also with a browser's live overview
 * open) and from a warm mirror as the warm-manifest cases measure it. No peer has a console: the
 * timings are airlock's alone, reported beside their target.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { Pool, request } from 'undici';
import type { TestUpstream } from '../../test/helpers/upstream.js';
import { startAirlockProcess, type LogTap } from '../lib/airlock-process.js';
import { baselineEntry } from '../lib/baseline.js';
import { load, timedPull } from '../lib/clients.js';
import { consoleStore, repoName, type ConsoleStore } from '../lib/console-store.js';
import type { Mirror } from '../lib/mirrors.js';
import { S, airlockEntry, baselineRef, quick, selected, smoke } from '../lib/options.js';
import { cpuSeconds, peakRssMiB } from '../lib/proc.js';
import { extras, record } from '../lib/report.js';
import { settle } from '../lib/shell.js';
import { stats } from '../lib/stats.js';
import { workPath } from '../lib/work-dir.js';

const REPOS = smoke ? 100 : 10_000;
const BLOBS = smoke ? 1_000 : 100_000;
/** Timed requests per query (after WARMUP untimed ones). */
const N = smoke ? 3 : quick ? 30 : 100;
const WARMUP = 3;
const TARGET = '< 100 ms';
/** Loads of S.loadSeconds on each side for the pull path's cost. */
const PAIRS = smoke ? 1 : 7;
/** How often the browser stand-in reloads the overview besides its event stream (more often than the page does). */
const OVERVIEW_POLL_MS = 1000;

const n = (x: number) => x.toLocaleString('en-US');

export async function consoleCase(up: TestUpstream): Promise<void> {
  const size = `${n(REPOS)} repositories`;
  const timingName = `console: API server time, ${size}, ${n(BLOBS)} blobs`;
  const storeName = `console: manifest GET by tag, ${size}, ui on ÷ off, ${S.connections} connections`;
  const liveName = `console: manifest GET by tag, ${size}, ui on with the live overview open ÷ off, ${S.connections} connections`;
  const noiseName = `console: manifest GET by tag, ${size}, ui off ÷ off (two servers alike: the noise of this measure), ${S.connections} connections`;
  const mirrorName = `console: warm manifest GET by tag from a mirror, ui on ÷ off, ${S.connections} connections`;
  if (!selected(timingName, storeName, liveName, noiseName, mirrorName)) return;

  if (selected(mirrorName)) await mirrorCost(up, mirrorName);
  if (!selected(timingName, storeName, liveName, noiseName)) return;
  const store = await consoleStore(REPOS, BLOBS);
  extras.push({ case: `console: store of ${size} and ${n(BLOBS)} blobs written directly in the layout`, value: store.seconds ? `${store.seconds.toFixed(1)} s (${(store.bytes / 1e6).toFixed(0)} MB)` : `reused from an earlier run (${store.root})` });
  console.error(`bench: console: store ${store.root} (${store.seconds ? `written in ${store.seconds.toFixed(1)} s` : 'reused'})`);

  if (selected(timingName)) await apiTimings(store);
  if (selected(storeName, liveName)) await pullCost(store, storeName, liveName);
  // With --baseline every row is this build against that one: a row of this build twice would be labelled as the baseline's.
  if (selected(noiseName) && !baselineRef) await noise(store, noiseName);
}

/** The index build and the API's server time, on a server that logs every request (info). */
async function apiTimings(store: ConsoleStore): Promise<void> {
  const served: Array<{ url: string; ms: number }> = [];
  const tap: LogTap = (l) => {
    if (l.msg === 'request' && typeof l.url === 'string' && l.url.startsWith('/ui/api/')) served.push({ url: l.url, ms: Number(l.ms) });
  };
  const t0 = Date.now();
  const m = await startAirlockProcess(airlockEntry, store.root, undefined, async () => [], tap);
  const pool = new Pool(m.url, { connections: 1 });
  try {
    const ready = (Date.now() - t0) / 1000;
    const built = (await indexed(pool, store.repositories, t0)) / 1000;
    const counted = (await settled(pool, store.blobs, t0)) / 1000;
    extras.push({ case: `console: after start, ${n(store.repositories)} repositories, ${n(store.blobs)} blobs`, value: `the registry answered after ${ready.toFixed(1)} s; the repository index was complete (GET /ui/api/repositories total) after ${built.toFixed(1)} s, the store's blob count (GET /metrics airlock_store_blobs, the overview's store figures) after ${counted.toFixed(1)} s` });

    const overview = await getJson<{ store: { repositories: number; blobs: number } }>(pool, '/ui/api/overview');
    const wrong = overview.store.repositories === store.repositories && overview.store.blobs === store.blobs ? '' : ` (it counts ${n(overview.store.repositories)} repositories, ${n(overview.store.blobs)} blobs)`;
    const q = 'service-01';
    const matches = Array.from({ length: store.repositories }, (_, r) => repoName(r)).filter((x) => x.includes(q)).length;
    const deep = Math.floor(store.repositories * 0.9);
    const queries: Array<[string, string]> = [
      [`GET /ui/api/overview${wrong}`, '/ui/api/overview'],
      ['GET /ui/api/repositories (by name, first 50)', '/ui/api/repositories'],
      ['GET /ui/api/repositories?sort=size&order=desc', '/ui/api/repositories?sort=size&order=desc'],
      [`GET /ui/api/repositories?q=${q} (${n(matches)} match)`, `/ui/api/repositories?q=${q}`],
      [`GET /ui/api/repositories?offset=${deep}`, `/ui/api/repositories?offset=${deep}`],
    ];
    for (const [label, url] of queries) {
      const client: number[] = [];
      for (let i = 0; i < WARMUP + N; i++) {
        const t = process.hrtime.bigint();
        await getJson(pool, url);
        if (i >= WARMUP) client.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      const server = (await logged(served, url, WARMUP + N)).slice(WARMUP);
      const value = `server median ${ms(pct(server, 0.5))}, p95 ${ms(pct(server, 0.95))}; client on loopback median ${ms(pct(client, 0.5))}, p95 ${ms(pct(client, 0.95))} (${N} requests, keep-alive)`;
      extras.push({ case: `console: ${label}, ${n(store.repositories)} repositories, ${n(store.blobs)} blobs`, value, target: TARGET });
      console.error(`bench: console: ${label}: ${value}`);
    }
  } finally {
    await pool.close();
    await m.stop();
  }
}

/** Manifest GET load on the big store, the console on (its index built) against off; then with a browser's live overview open. */
async function pullCost(store: ConsoleStore, storeName: string, liveName: string): Promise<void> {
  const on = await startAirlockProcess(airlockEntry, store.root);
  const off = await startOff(store.root);
  const pool = new Pool(on.url, { connections: 1 });
  const offPool = new Pool(off.url, { connections: 1 });
  try {
    // Measured once both have done what they do at start (the index; the store's totals, which both count).
    await indexed(pool, store.repositories, Date.now());
    await settled(pool, store.blobs, Date.now());
    await settled(offPool, store.blobs, Date.now());
    const servers = { airlock: on, peer: off };
    const urlPath = `/v2/${store.sample.name}/manifests/${store.sample.tag}`;
    // One untimed load each: a long-running server is what operators run.
    for (const s of Object.values(servers)) await load(s, urlPath, 'GET');
    await onOff(storeName, servers, (who) => load(servers[who], urlPath, 'GET'));
    // The browser stand-in's requests go to both sides (the ui-off one answers them 404), so the
    // row shows what the open console costs the server, not what the stand-in costs the load's client.
    await onOff(liveName, servers, (who) => withLiveOverview(servers[who], () => load(servers[who], urlPath, 'GET')));
    extras.push({ case: `console: peak RSS serving ${n(store.repositories)} repositories under manifest load (MiB)`, value: `ui on ${(await peakRssMiB(on.pid)).toFixed(0)}, ${peerLabel() ?? `baseline ${baselineRef}`} ${(await peakRssMiB(off.pid)).toFixed(0)}` });
  } finally {
    await pool.close();
    await offPool.close();
    await on.stop();
    await off.stop();
  }
}

/**
 * The same load on two servers alike (this build, ui off), so the report shows how far apart two
 * identical servers measure in the same run: "unchanged within noise" is judged against it.
 */
async function noise(store: ConsoleStore, name: string): Promise<void> {
  const off = async () => ['ui:\n  enabled: false'];
  const a = await startAirlockProcess(airlockEntry, store.root, undefined, off);
  const b = await startAirlockProcess(airlockEntry, store.root, undefined, off);
  try {
    const pools = [a, b].map((m) => new Pool(m.url, { connections: 1 }));
    for (const p of pools) await settled(p, store.blobs, Date.now());
    await Promise.all(pools.map((p) => p.close()));
    const servers = { airlock: a, peer: b };
    const urlPath = `/v2/${store.sample.name}/manifests/${store.sample.tag}`;
    for (const s of Object.values(servers)) await load(s, urlPath, 'GET');
    await onOff(name, servers, (who) => load(servers[who], urlPath, 'GET'), { label: 'one', peer: 'a second server with ui.enabled false', rate: '', cpu: '' });
  } finally {
    await a.stop();
    await b.stop();
  }
}

/** The warm-manifest case's load on two mirrors filled with one pull of bench/multi:v1, console on and off. */
async function mirrorCost(up: TestUpstream, name: string): Promise<void> {
  const roots = { airlock: await mkdtemp(workPath('console-on-')), peer: await mkdtemp(workPath('console-off-')) };
  const on = await startAirlockProcess(airlockEntry, roots.airlock, up);
  const off = await startOff(roots.peer, up);
  try {
    const servers = { airlock: on, peer: off };
    for (const s of Object.values(servers)) {
      await timedPull(s.host, 'bench/multi:v1');
      await load(s, '/v2/bench/multi/manifests/v1', 'GET');
    }
    await onOff(name, servers, (who) => load(servers[who], '/v2/bench/multi/manifests/v1', 'GET'));
  } finally {
    await on.stop();
    await off.stop();
    for (const r of Object.values(roots)) await rm(r, { recursive: true, force: true });
  }
}

/** The side without the console: this build with ui.enabled false, or the baseline build as it is configured by default. */
function startOff(root: string, up?: TestUpstream): Promise<Mirror> {
  return baselineRef ? startAirlockProcess(baselineEntry(), root, up) : startAirlockProcess(airlockEntry, root, up, async () => ['ui:\n  enabled: false']);
}

/**
 * Loads on the console's side and the other, alternating who goes first, PAIRS times each: more
 * and shorter than other cases' runs, since a few per cent is all there is to see on shared cores.
 * Also the server's CPU time per request, which other processes on the cores disturb far less
 * than they disturb a rate.
 */
async function onOff(name: string, servers: Record<'airlock' | 'peer', Mirror>, fn: (who: 'airlock' | 'peer') => Promise<number>, row: { label: string; peer: string | undefined; rate: string; cpu: string } = { label: 'ui on', peer: peerLabel(), rate: '≥ 0.97', cpu: '≤ 1.03' }): Promise<void> {
  if (!selected(name)) return;
  await settle();
  const runs: Record<'airlock' | 'peer', number[]> = { airlock: [], peer: [] };
  const cpu: Record<'airlock' | 'peer', number[]> = { airlock: [], peer: [] };
  for (let i = 0; i < PAIRS; i++) {
    for (const who of i % 2 ? (['airlock', 'peer'] as const) : (['peer', 'airlock'] as const)) {
      const c0 = await cpuSeconds(servers[who].pid);
      const t0 = process.hrtime.bigint();
      const rate = await fn(who);
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const c1 = await cpuSeconds(servers[who].pid);
      runs[who].push(rate);
      cpu[who].push(((c1.user + c1.system - c0.user - c0.system) / (rate * secs)) * 1e6);
    }
  }
  record(name, row.peer, 'req/s', 'higher', row.rate, runs.airlock, runs.peer);
  const a = stats(cpu.airlock).median;
  const p = stats(cpu.peer).median;
  const label = name.replace(/, \d+ connections$/, '');
  extras.push({ case: `${label}: server CPU per request (µs, median of ${PAIRS})`, value: `${row.label} ${a.toFixed(0)}, ${row.peer ?? `baseline ${baselineRef}`} ${p.toFixed(0)}: ${(a / p).toFixed(2)}`, target: row.cpu });
  // Both sides loaded at once, PAIRS times: a slow spell of the shared cores falls on both alike,
  // so each round's ratio of CPU per request is far steadier than loads taken one after another.
  const ratios: number[] = [];
  for (let i = 0; i < PAIRS; i++) {
    const c0 = await Promise.all([cpuSeconds(servers.airlock.pid), cpuSeconds(servers.peer.pid)]);
    const t0 = process.hrtime.bigint();
    const rates = await Promise.all([fn('airlock'), fn('peer')]);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const c1 = await Promise.all([cpuSeconds(servers.airlock.pid), cpuSeconds(servers.peer.pid)]);
    const [ca, cp] = [0, 1].map((k) => (c1[k]!.user + c1[k]!.system - c0[k]!.user - c0[k]!.system) / (rates[k]! * secs));
    ratios.push(ca! / cp!);
  }
  const r = stats(ratios);
  extras.push({ case: `${label}: server CPU per request, both loaded at once (${row.label} ÷ ${row.peer ?? `baseline ${baselineRef}`}, median of ${PAIRS} rounds)`, value: `${r.median.toFixed(3)} (rounds ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`, target: row.cpu });
}

function peerLabel(): string | undefined {
  return baselineRef ? undefined : 'airlock with ui.enabled false';
}

/**
 * `fn` while a browser stand-in keeps the overview's event stream open and reloads the
 * overview every OVERVIEW_POLL_MS. A server without the console answers both 404: the stand-in
 * makes the same requests of it, so the load's client is disturbed alike on both sides.
 */
async function withLiveOverview<T>(m: Mirror, fn: () => Promise<T>): Promise<T> {
  const stop = new AbortController();
  const events = request(`${m.url}/ui/api/events`, { signal: stop.signal, headers: { accept: 'text/event-stream' } }).then(async (r) => {
    if (r.statusCode !== 200 && r.statusCode !== 404) throw new Error(`${m.name}: GET /ui/api/events answered ${r.statusCode}`);
    for await (const chunk of r.body) void chunk;
  }).catch((e: unknown) => {
    if (!stop.signal.aborted) throw e;
  });
  const pool = new Pool(m.url, { connections: 1 });
  const poll = setInterval(() => void getJson(pool, '/ui/api/overview').catch(() => undefined), OVERVIEW_POLL_MS);
  try {
    return await fn();
  } finally {
    clearInterval(poll);
    stop.abort();
    await events;
    await pool.close();
  }
}

/** Polls the repository list until it counts `total` repositories; ms since `t0`. */
async function indexed(pool: Pool, total: number, t0: number): Promise<number> {
  const until = Date.now() + 600_000;
  for (;;) {
    const page = await getJson<{ total: number }>(pool, '/ui/api/repositories?limit=1');
    if (page.total === total) return Date.now() - t0;
    if (Date.now() > until) throw new Error(`the console's index holds ${page.total} of ${total} repositories after 10 minutes`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Polls /metrics until the store's blob count (a scan every server runs at start) is `blobs`;
 * ms since `t0`. A build without that gauge is taken as settled.
 */
async function settled(pool: Pool, blobs: number, t0: number): Promise<number> {
  const until = Date.now() + 600_000;
  for (;;) {
    const r = await pool.request({ path: '/metrics', method: 'GET' });
    const text = await r.body.text();
    const m = /^airlock_store_blobs (\d+)$/m.exec(text);
    if (r.statusCode !== 200 || !m || Number(m[1]) === blobs) return Date.now() - t0;
    if (Date.now() > until) throw new Error(`the store's blob count is ${m[1]} of ${blobs} after 10 minutes`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

async function getJson<T = unknown>(pool: Pool, path: string): Promise<T> {
  const r = await pool.request({ path, method: 'GET', headers: { accept: 'application/json' } });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`GET ${path} answered ${r.statusCode}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** The `ms` of the last `count` request log lines for `url`, once that many have arrived (they come through a pipe). */
async function logged(served: Array<{ url: string; ms: number }>, url: string, count: number): Promise<number[]> {
  const until = Date.now() + 10_000;
  for (;;) {
    const mine = served.filter((s) => s.url === url).map((s) => s.ms);
    if (mine.length >= count) return mine.slice(-count);
    if (Date.now() > until) throw new Error(`only ${mine.length} of ${count} request log lines for ${url}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(p * s.length) - 1)]!;
}

function ms(x: number): string {
  return `${x < 10 ? x.toFixed(1) : x.toFixed(0)} ms`;
}
