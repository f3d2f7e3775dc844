/**
 * Running airlock for months: eviction under storage.maxSize with real pulls, metrics that move
 * with cold and warm pulls, health and readiness, SIGTERM in the middle of a cold fill and SIGHUP
 * with a broken configuration (the real `airlock serve` process), `airlock du`, and the systemd
 * unit checked by systemd-analyze.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock } from '../helpers/airlock.js';
import { runAirlock, spawnServe, waitHealthy } from '../helpers/cli.js';
import { generateImage, type GeneratedImage } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { pullToLayout } from '../helpers/skopeo.js';
import { blobFile, exists } from '../helpers/store-files.js';
import { mirrorUpstreams, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

const run = promisify(execFile);
let work: string;
let up: TestUpstream;
const imgs: GeneratedImage[] = [];
const MiB = 2 ** 20;
let n = 0;

async function blobBytes(root: string): Promise<number> {
  const base = path.join(root, 'docker/registry/v2/blobs/sha256');
  let total = 0;
  for (const p of await readdir(base).catch(() => [])) {
    for (const h of await readdir(path.join(base, p))) total += (await stat(path.join(base, p, h, 'data')).catch(() => ({ size: 0 }))).size;
  }
  return total;
}


beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-ops-'));
  up = await startTestUpstream();
  for (let i = 0; i < 6; i++) {
    const img = await generateImage(path.join(work, `g${i}`), { layers: 2, layerSize: 512 * 1024, format: 'oci' });
    await up.push(img, `ops/img${i}`, 'v1');
    imgs.push(img);
  }
  const big = await generateImage(path.join(work, 'gbig'), { layers: 1, layerSize: 24 * MiB, format: 'oci' });
  await up.push(big, 'ops/big', 'v1');
  imgs.push(big);
}, 180_000);

afterAll(async () => {
  await up?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('eviction', () => {
  it('settles under the high watermark with real pulls, keeps pinned images, and fetches evicted ones again', async () => {
    const root = path.join(work, 'evict');
    const maxSize = Math.round(3.5 * MiB);
    const reg = await startAirlock(`storage:\n  root: ${root}\n  maxSize: ${maxSize}\n  evictMinAge: 0s\nlog:\n  level: warn\n${mirrorUpstreams(up)}\n`);
    try {
      // Pinned by prefetch.
      const pre = await reg.prefetch(['ops/img0:v1']);
      expect(pre.results[0]!.outcome).toBe('ok');
      for (let i = 1; i <= 5; i++) {
        const p = await pullToLayout(`docker://${reg.host}/ops/img${i}:v1`, path.join(work, `ev-${i}`));
        expect(p.manifestDigest).toBe(imgs[i]!.manifestDigest);
        // Eviction runs a second after a fill; let it run on whole images, so where the store
        // settles does not depend on how a check fell in the middle of a pull.
        await new Promise((r) => setTimeout(r, 1500));
      }
      // Room is made before each fill commits (maxSize is a ceiling), down to the low watermark
      // when it is made; the images pulled after that settle the store between the watermarks.
      const until = Date.now() + 15_000;
      while ((await blobBytes(root)) > 0.95 * maxSize && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
      const size = await blobBytes(root);
      expect(size).toBeLessThanOrEqual(0.95 * maxSize);
      // The pinned image is whole.
      for (const b of imgs[0]!.blobs) expect(await exists(blobFile(root, b.digest))).toBe(true);
      // The most recent pull stayed; the oldest unpinned went.
      for (const b of imgs[5]!.blobs) expect(await exists(blobFile(root, b.digest))).toBe(true);
      for (const b of imgs[1]!.blobs) expect(await exists(blobFile(root, b.digest))).toBe(false);
      // Every remaining image still pulls without going upstream for blobs.
      up.proxy.reset();
      for (const i of [0, 5]) {
        const p = await pullToLayout(`docker://${reg.host}/ops/img${i}:v1`, path.join(work, `ev-again-${i}-${n++}`));
        expect(p.manifestDigest).toBe(imgs[i]!.manifestDigest);
      }
      expect(up.proxy.blobBytes()).toBe(0);
      // An evicted one is fetched again on demand.
      const back = await pullToLayout(`docker://${reg.host}/ops/img1:v1`, path.join(work, `ev-back-${n++}`));
      expect(back.manifestDigest).toBe(imgs[1]!.manifestDigest);
      expect(up.proxy.blobBytes()).toBe(imgs[1]!.blobs.reduce((s, b) => s + b.size, 0));
      // Eviction shows in the metrics.
      const m = await (await request(`${reg.url}/metrics`)).body.text();
      expect(Number(/^airlock_evictions_total (\d+)/m.exec(m)?.[1])).toBeGreaterThan(0);
      // du sees what is there.
      await reg.accessTimes.flush();
      const cfg = path.join(work, 'evict.yml');
      await writeFile(cfg, `storage:\n  root: ${root}\nlog:\n  level: warn\n`);
      const du = await runAirlock(['du', '--config', cfg]);
      expect(du.code, du.stderr).toBe(0);
      expect(du.stdout).toMatch(/^ops\/img0\s+1\s+1\.00 MiB\s+0 B\s+\d{4}-\d\d-\d\dT[\d:]+Z\s+yes$/m);
      expect(du.stdout).toMatch(/^ops\/img5\s+1\s+1\.00 MiB\s+.*\s+no$/m);
      expect(du.stdout).toMatch(/^store: /m);
    } finally {
      await reg.stop();
    }
  });
});

describe('metrics and health', () => {
  it('counts misses, hits and upstream bytes across a cold and a warm pull; healthz and readyz answer', async () => {
    const root = path.join(work, 'metrics');
    const reg = await startAirlock(`storage:\n  root: ${root}\nlog:\n  level: warn\n${mirrorUpstreams(up)}\n`);
    const scrape = async () => {
      const r = await request(`${reg.url}/metrics`);
      expect(r.headers['content-type']).toMatch(/text\/plain/);
      const t = await r.body.text();
      const v = (re: RegExp) => Number(re.exec(t)?.[1] ?? 0);
      return {
        blobMiss: v(/^airlock_cache_requests_total\{kind="blob",outcome="miss"\} (\d+)/m),
        blobHit: v(/^airlock_cache_requests_total\{kind="blob",outcome="hit"\} (\d+)/m),
        upstreamBytes: v(/^airlock_upstream_bytes_total\{upstream="docker.io"\} (\d+)/m),
        blobRequests: v(/^airlock_http_requests_total\{endpoint="blob",method="GET",status="200"\} (\d+)/m),
        text: t,
      };
    };
    try {
      const img = imgs[2]!;
      const size = img.blobs.reduce((s, b) => s + b.size, 0);
      const m0 = await scrape();
      await pullToLayout(`docker://${reg.host}/ops/img2:v1`, path.join(work, `m-cold`));
      const m1 = await scrape();
      expect(m1.blobMiss - m0.blobMiss).toBe(img.blobs.length);
      // The layers and config, and the manifest.
      expect(m1.upstreamBytes - m0.upstreamBytes).toBe(size + img.manifestBytes.length);
      await pullToLayout(`docker://${reg.host}/ops/img2:v1`, path.join(work, `m-warm`));
      // A request is counted when its connection is done with it, which may be a moment after
      // the client has read it: give the last one that moment.
      let m2 = await scrape();
      for (let i = 0; i < 40 && m2.blobRequests - m1.blobRequests < img.blobs.length; i++) {
        await new Promise((r) => setTimeout(r, 50));
        m2 = await scrape();
      }
      expect(m2.blobHit - m1.blobHit).toBe(img.blobs.length);
      expect(m2.upstreamBytes).toBe(m1.upstreamBytes);
      expect(m2.blobRequests - m1.blobRequests).toBe(img.blobs.length);
      expect(m2.blobRequests - m0.blobRequests).toBe(2 * img.blobs.length);
      expect(m2.text).toMatch(/^airlock_upstream_request_duration_seconds_count\{upstream="docker.io"\} [1-9]/m);
      expect(m2.text).toMatch(/^airlock_fills_total\{outcome="done"\} /m);

      const h = await request(`${reg.url}/healthz`);
      expect(h.statusCode).toBe(200);
      expect(await h.body.json()).toEqual({ status: 'ok' });
      const ready = await request(`${reg.url}/readyz`);
      expect(ready.statusCode).toBe(200);
      expect(await ready.body.json()).toMatchObject({ ready: true, store: 'writable', upstreams: { 'docker.io': 'reachable', 'ghcr.io': 'reachable' } });
    } finally {
      await reg.stop();
    }
    // With the upstream gone, readiness still holds (an offline site serves by design) and says so.
    const reg2 = await startAirlock(`storage:\n  root: ${root}\nlog:\n  level: warn\nupstreams:\n  docker.io:\n    url: http://127.0.0.1:9\n`);
    try {
      const ready = await request(`${reg2.url}/readyz`);
      const body = (await ready.body.json()) as { ready: boolean; upstreams: Record<string, string> };
      expect(ready.statusCode).toBe(200);
      expect(body.ready).toBe(true);
      expect(body.upstreams['docker.io']).toMatch(/^unreachable/);
    } finally {
      await reg2.stop();
    }
  });
});

describe('process life', () => {
  it('SIGTERM during a cold pull of a large blob: exit 0 within the deadline, no temp files, and the next start serves the cache', async () => {
    const root = path.join(work, 'sigterm');
    const port = await freePort();
    const cfg = path.join(work, 'sigterm.yml');
    await writeFile(cfg, `listen: "127.0.0.1:${port}"\nstorage:\n  root: ${root}\nlog:\n  level: warn\nhttp:\n  shutdownTimeout: 2s\n${mirrorUpstreams(up)}\n`);
    const url = `http://127.0.0.1:${port}`;
    const big = imgs[6]!;
    const layer = big.blobs.find((b) => b.size > MiB)!;
    let p = spawnServe(cfg);
    try {
      await waitHealthy(url, { out: p.out });
      up.proxy.reset();
      up.proxy.faults.slowBlobs = 4 * MiB;
      const res = await request(`${url}/v2/ops/big/blobs/${layer.digest}`);
      let got = 0;
      const reading = (async () => {
        try {
          for await (const c of res.body) got += (c as Buffer).length;
        } catch { /* cut at shutdown */ }
      })();
      while (got < 2 * MiB) await new Promise((r) => setTimeout(r, 50));
      const t0 = Date.now();
      p.child.kill('SIGTERM');
      const code = await p.exit;
      const took = Date.now() - t0;
      await reading;
      expect(code, p.out()).toBe(0);
      expect(took).toBeLessThan(2000 + 3000);
      expect(got).toBeLessThan(layer.size);
      // Nothing half-written anywhere: no temp files, no partial blob.
      const tmp = path.join(root, '.airlock/tmp');
      const left = (await readdir(tmp).catch(() => [] as string[])).map((d) => readdir(path.join(tmp, d)).catch(() => [] as string[]));
      expect((await Promise.all(left)).flat()).toEqual([]);
      expect(await exists(blobFile(root, layer.digest))).toBe(false);
    } finally {
      up.proxy.faults.slowBlobs = undefined;
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
    }
    // The next start serves what was cached, and fills the rest.
    p = spawnServe(cfg);
    try {
      await waitHealthy(url, { out: p.out });
      const pulled = await pullToLayout(`docker://127.0.0.1:${port}/ops/big:v1`, path.join(work, 'after-term'));
      expect(pulled.manifestDigest).toBe(big.manifestDigest);
      up.proxy.reset();
      const again = await pullToLayout(`docker://127.0.0.1:${port}/ops/big:v1`, path.join(work, 'after-term-2'));
      expect(again.manifestDigest).toBe(big.manifestDigest);
      expect(up.proxy.blobBytes()).toBe(0);
    } finally {
      p.child.kill('SIGTERM');
      await p.exit;
    }
  });

  it('SIGHUP with a broken config keeps serving with the old one; a good one applies', async () => {
    const root = path.join(work, 'sighup');
    const port = await freePort();
    const cfg = path.join(work, 'sighup.yml');
    const good = `listen: "127.0.0.1:${port}"\nstorage:\n  root: ${root}\nlog:\n  level: info\n${mirrorUpstreams(up)}\n`;
    await writeFile(cfg, good);
    const url = `http://127.0.0.1:${port}`;
    const p = spawnServe(cfg);
    try {
      await waitHealthy(url, { out: p.out });
      await writeFile(cfg, `${good}storage:\n  root: [oops\n`);
      p.child.kill('SIGHUP');
      const until = Date.now() + 5000;
      while (!/reload refused/.test(p.out()) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(p.out()).toMatch(/reload refused/);
      const pulled = await pullToLayout(`docker://127.0.0.1:${port}/ops/img3:v1`, path.join(work, 'hup'));
      expect(pulled.manifestDigest).toBe(imgs[3]!.manifestDigest);
      // A valid file with a new push rule takes effect without a restart.
      await writeFile(cfg, `${good}push:\n  repositories: ["local/**"]\n`);
      expect((await request(`${url}/v2/local/app/blobs/uploads/`, { method: 'POST' })).statusCode).toBe(403);
      p.child.kill('SIGHUP');
      const until2 = Date.now() + 5000;
      while (!/configuration reloaded/.test(p.out()) && Date.now() < until2) await new Promise((r) => setTimeout(r, 50));
      const post = await request(`${url}/v2/local/app/blobs/uploads/`, { method: 'POST' });
      await post.body.dump();
      expect(post.statusCode).toBe(202);
    } finally {
      p.child.kill('SIGTERM');
      expect(await p.exit).toBe(0);
    }
  });
});

describe('packaging', () => {
  it('the systemd unit passes systemd-analyze verify', async () => {
    const unit = path.resolve('systemd/airlock.service');
    const r = await run('systemd-analyze', ['verify', '--man=no', unit]).then(
      (x) => ({ code: 0, out: x.stdout + x.stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: (e.stdout ?? '') + (e.stderr ?? '') }),
    );
    // Lines about the unit file itself would be its mistakes; other units' noise is not ours.
    const ours = r.out.split('\n').filter((l) => l.includes('airlock.service'));
    expect(ours, r.out).toEqual([]);
    expect(r.code, r.out).toBe(0);
  });
});
