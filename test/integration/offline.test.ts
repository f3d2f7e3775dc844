/**
 * The offline-shipping journey with real parts: Distribution with token auth upstream; the
 * `airlock` command prefetches a list (a multi-arch index filtered to one platform, tag patterns),
 * freezes the store, imports the bundle into an empty store at an "offline site" (airlock with no
 * upstream at all), and skopeo pulls every image from it; then Debian's docker-registry serves
 * the same directory. Incremental bundles, tampered and truncated bundles, verify and repair.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock } from '../helpers/airlock.js';
import { runAirlock } from '../helpers/cli.js';
import { blobFile, snapshot } from '../helpers/store-files.js';
import { startDistribution } from '../helpers/distribution.js';
import { generateImage, generateIndex, type GeneratedImage } from '../helpers/images.js';
import { pullToLayout } from '../helpers/skopeo.js';
import { READER, mirrorUpstreams, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

const run = promisify(execFile);
let work: string;
let up: TestUpstream;
const img: Record<string, GeneratedImage> = {};
let n = 0;

const airlock = (args: string[]) => runAirlock(args, 120_000);

/** The connected side's mirror.yml: Docker Hub and ghcr.io stand-ins, and a prefetch list. */
async function connectedConfig(root: string): Promise<string> {
  const f = path.join(work, `connected-${n++}.yml`);
  await writeFile(
    f,
    [
      `storage:\n  root: ${root}`,
      'log:\n  level: warn',
      mirrorUpstreams(up),
      'prefetch:',
      '  concurrency: 3',
      '  platforms: [linux/amd64]',
      '  images:',
      '    - alpine:3.20',
      '    - ghcr.io/org/tool:1.4',
      '    - multi:latest',
      '    - name: library/nginx',
      '      tags: [">=1.26 <2"]',
      '      newest: 2',
    ].join('\n'),
  );
  return f;
}

/** An offline site's mirror.yml: no upstream at all. */
async function offlineConfig(root: string): Promise<string> {
  const f = path.join(work, `offline-${n++}.yml`);
  await writeFile(f, `storage:\n  root: ${root}\nlog:\n  level: warn\n`);
  return f;
}

/** Where a blob's bytes sit inside a tar (random layers make the first 64 bytes unique). */
async function offsetOf(tarFile: string, blob: Buffer): Promise<number> {
  const all = await readFile(tarFile);
  const at = all.indexOf(blob.subarray(0, 64));
  expect(at).toBeGreaterThan(0);
  return at;
}


const amd64 = () => img.index!.children[0]!;
const arm64 = () => img.index!.children[1]!;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-offline-'));
  up = await startTestUpstream();
  img.alpine = await generateImage(path.join(work, 'g-alpine'), { layers: 3, layerSize: 300_000, format: 'oci' });
  img.tool = await generateImage(path.join(work, 'g-tool'), { layers: 2, layerSize: 200_000, format: 'docker' });
  img.index = await generateIndex(path.join(work, 'g-index'), { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }], layers: 2, layerSize: 250_000, format: 'oci' });
  img.nginx = await generateImage(path.join(work, 'g-nginx'), { layers: 1, layerSize: 100_000, format: 'oci' });
  img.next = await generateImage(path.join(work, 'g-next'), { layers: 2, layerSize: 400_000, format: 'oci' });
  await up.push(img.alpine, 'library/alpine', '3.20');
  await up.push(img.tool, 'org/tool', '1.4');
  await up.push(img.index, 'library/multi', 'latest');
  for (const t of ['1.25.9', '1.26.0', '1.27.1', '1.27.2', '2.0.0', 'mainline']) await up.push(img.nginx, 'library/nginx', t);
  await up.push(img.next, 'library/alpine', '3.21');
}, 300_000);

afterAll(async () => {
  await up?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('offline shipping: prefetch, freeze, import, serve', () => {
  const connected = () => path.join(work, 'connected-store');
  const bundle1 = () => path.join(work, 'b1.tar');
  const bundle2 = () => path.join(work, 'b2.tar');

  it('prefetches the list (one platform of the index, the newest two tags of a range) and is idempotent', async () => {
    const cfg = await connectedConfig(connected());
    up.proxy.reset();
    const r = await airlock(['prefetch', '--config', cfg]);
    expect(r.stderr).not.toMatch(/^airlock:/m);
    expect(r.code).toBe(0);
    for (const image of ['alpine:3.20', 'ghcr.io/org/tool:1.4', 'multi:latest', 'library/nginx:1.27.2', 'library/nginx:1.27.1']) expect(r.stdout).toContain(image);
    expect(r.stdout).not.toContain('nginx:1.26.0');
    expect(r.stdout).not.toContain('nginx:2.0.0');
    expect(r.stdout).toMatch(/5 of 5 images ok/);
    // The amd64 image of the index is there; the arm64 one was never fetched.
    for (const b of amd64().blobs) expect((await stat(blobFile(connected(), b.digest))).size).toBe(b.size);
    for (const b of arm64().blobs) await expect(stat(blobFile(connected(), b.digest))).rejects.toThrow();
    const fetched = up.proxy.blobBytes();
    const expected = [img.alpine!, img.tool!, amd64(), img.nginx!].flatMap((i) => i.blobs).reduce((s, b) => s + b.size, 0);
    expect(fetched).toBe(expected);
    // Stored as a pull would store it: library/ for Docker Hub names, ghcr.io/ for the other upstream.
    const v2 = path.join(connected(), 'docker/registry/v2/repositories');
    expect(await readFile(path.join(v2, 'ghcr.io/org/tool/_manifests/tags/1.4/current/link'), 'utf8')).toBe(img.tool!.manifestDigest);
    expect(await readFile(path.join(v2, 'library/multi/_manifests/tags/latest/current/link'), 'utf8')).toBe(img.index!.manifestDigest);
    // Pinned for eviction.
    // alpine, tool, the index and its amd64 child, nginx (both tags are one digest).
    expect((await readdir(path.join(connected(), '.airlock/pins'))).length).toBe(5);

    up.proxy.reset();
    const again = await airlock(['prefetch', '--config', cfg]);
    expect(again.code).toBe(0);
    expect(up.proxy.blobBytes()).toBe(0);
    expect(up.proxy.manifestRequests('GET')).toBe(0);
  }, 180_000);

  it('fails with a non-zero exit naming the image that could not be fetched', async () => {
    const cfg = await connectedConfig(path.join(work, 'store-fail'));
    const r = await airlock(['prefetch', '--config', cfg, 'alpine:3.20', 'alpine:no-such-tag']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/1 of 2 images ok/);
    expect(r.stderr).toMatch(/prefetch of alpine:no-such-tag failed: .*manifest unknown/i);
  }, 60_000);

  it('freezes a bundle that sha256sum -c accepts and that imports into an empty offline store, which skopeo pulls from', async () => {
    const cfg = await connectedConfig(connected());
    const f = await airlock(['freeze', '--config', cfg, '--out', bundle1()]);
    expect(f.stderr).not.toMatch(/^airlock:/m);
    expect(f.code).toBe(0);
    expect(f.stdout).toMatch(/5 images/);
    expect((await readdir(work)).filter((x) => x.includes('.partial'))).toEqual([]);

    // A plain tar of the standard layout, with its checksums.
    const x = path.join(work, 'extracted');
    await mkdir(x);
    await run('tar', ['-xf', bundle1(), '-C', x]);
    const sums = await run('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], { cwd: x });
    expect(sums.stdout).toBe('');
    const header = JSON.parse(await readFile(path.join(x, 'airlock-bundle.json'), 'utf8')) as { images: Array<{ name: string; tag?: string; platforms: string[] }>; blobs: unknown[] };
    expect(header.images.find((i) => i.name === 'library/multi')?.platforms).toEqual(['linux/amd64']);

    const offline = path.join(work, 'offline-store');
    const ocfg = await offlineConfig(offline);
    const imp = await airlock(['import', '--config', ocfg, bundle1()]);
    expect(imp.stderr).not.toMatch(/^airlock:/m);
    expect(imp.code).toBe(0);
    expect(imp.stdout).toMatch(new RegExp(`${header.blobs.length} blobs added`));
    expect(await snapshot(offline)).toEqual(await snapshot(x));

    const a = await startAirlock(`storage:\n  root: ${offline}\nlog:\n  level: warn\n`);
    const dist = await startDistribution({ root: offline });
    try {
      for (const host of [a.host, dist.host]) {
        const p = async (ref: string) => pullToLayout(`docker://${host}/${ref}`, path.join(work, `pull-${n++}`));
        expect((await p(host === a.host ? 'alpine:3.20' : 'library/alpine:3.20')).manifestDigest).toBe(img.alpine!.manifestDigest);
        expect((await p('ghcr.io/org/tool:1.4')).manifestDigest).toBe(img.tool!.manifestDigest);
        const multi = await p('library/multi:latest');
        expect(multi.manifestDigest).toBe(amd64().manifestDigest);
        for (const b of amd64().blobs) expect(multi.blobs).toContain(b.digest);
        expect((await p('library/nginx:1.27.2')).manifestDigest).toBe(img.nginx!.manifestDigest);
      }
      // The offline site never dials out: a name it does not hold is a clean 404.
      const r = await request(`${a.url}/v2/library/absent/manifests/1`);
      expect(r.statusCode).toBe(404);
      expect(((await r.body.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('MANIFEST_UNKNOWN');
    } finally {
      await dist.stop();
      await a.stop();
    }
    const v = await airlock(['verify', '--config', ocfg]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/store is consistent/);
  }, 240_000);

  it('ships an incremental bundle that needs its base, and imports the chain in order', async () => {
    const cfg = await connectedConfig(connected());
    const p = await airlock(['prefetch', '--config', cfg, 'alpine:3.21']);
    expect(p.code).toBe(0);
    const f = await airlock(['freeze', '--config', cfg, '--out', bundle2(), '--since', bundle1()]);
    expect(f.code).toBe(0);
    const header = JSON.parse((await run('tar', ['-xOf', bundle2(), 'airlock-bundle.json'], { maxBuffer: 16 << 20 })).stdout) as { base: { id: string }; blobs: Array<{ digest: string }> };
    // Only what the first bundle lacks: the new image's config, layers and manifest.
    expect(header.blobs.map((b) => b.digest).sort()).toEqual([...img.next!.blobs.map((b) => b.digest), img.next!.manifestDigest].sort());
    expect((await stat(bundle2())).size).toBeLessThan((await stat(bundle1())).size);

    const alone = path.join(work, 'alone-store');
    const refused = await airlock(['import', '--config', await offlineConfig(alone), bundle2()]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`import its base bundle ${header.base.id}`);
    expect(await snapshot(alone)).toEqual({});

    const chain = path.join(work, 'chain-store');
    const ocfg = await offlineConfig(chain);
    expect((await airlock(['import', '--config', ocfg, bundle1()])).code).toBe(0);
    const second = await airlock(['import', '--config', ocfg, bundle2()]);
    expect(second.stderr).not.toMatch(/^airlock:/m);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/4 blobs added/);
    const a = await startAirlock(`storage:\n  root: ${chain}\nlog:\n  level: warn\n`);
    try {
      for (const [ref, i] of [['alpine:3.21', img.next!], ['alpine:3.20', img.alpine!]] as const) {
        const pulled = await pullToLayout(`docker://${a.host}/${ref}`, path.join(work, `pull-${n++}`));
        expect(pulled.manifestDigest).toBe(i.manifestDigest);
        for (const b of i.blobs) expect(pulled.blobs).toContain(b.digest);
      }
    } finally {
      await a.stop();
    }
  }, 240_000);

  it('refuses a bundle with one flipped byte, or truncated, naming the entry, and leaves the store as it was', async () => {
    const store = path.join(work, 'guarded-store');
    const ocfg = await offlineConfig(store);
    expect((await airlock(['import', '--config', ocfg, bundle1()])).code).toBe(0);
    const before = await snapshot(store);
    const layer = [...img.next!.blobs].sort((x, y) => y.size - x.size)[0]!;
    const layerBytes = await readFile(blobFile(connected(), layer.digest));

    const flipped = path.join(work, 'flipped.tar');
    await copyFile(bundle2(), flipped);
    const buf = await readFile(flipped);
    const at = await offsetOf(flipped, layerBytes);
    buf[at + 1000] = (buf[at + 1000] as number) ^ 0x01;
    await writeFile(flipped, buf);
    const r1 = await airlock(['import', '--config', ocfg, flipped]);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toContain(`entry docker/registry/v2/blobs/sha256/${layer.digest.slice(7, 9)}/${layer.digest.slice(7)}/data: content does not match its digest`);
    expect(r1.stderr.split('\n').filter((l) => l.startsWith('airlock:'))).toHaveLength(1);
    expect(await snapshot(store)).toEqual(before);

    const cut = path.join(work, 'cut.tar');
    await copyFile(bundle2(), cut);
    await truncate(cut, at + 50_000);
    const r2 = await airlock(['import', '--config', ocfg, cut]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(new RegExp(`truncated or damaged in entry docker/registry/v2/blobs/sha256/${layer.digest.slice(7, 9)}/${layer.digest.slice(7)}/data`));
    expect(await snapshot(store)).toEqual(before);
    // Nothing staged is left behind either.
    const tmp = path.join(store, '.airlock/tmp');
    for (const d of await readdir(tmp)) expect(await readdir(path.join(tmp, d))).toEqual([]);

    const notATar = path.join(work, 'not-a-bundle.tar');
    await writeFile(notATar, 'hello\n');
    const r3 = await airlock(['import', '--config', ocfg, notATar]);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/^airlock: .*not-a-bundle\.tar/);
    expect(await snapshot(store)).toEqual(before);
  }, 120_000);

  it('verify finds a corrupt blob; --repair quarantines it and the links that need it; the rest still serves', async () => {
    const store = path.join(work, 'repair-store');
    const ocfg = await offlineConfig(store);
    expect((await airlock(['import', '--config', ocfg, bundle1()])).code).toBe(0);
    const victim = [...img.tool!.blobs].sort((x, y) => y.size - x.size)[0]!;
    const file = blobFile(store, victim.digest);
    const bytes = await readFile(file);
    bytes[10] = (bytes[10] as number) ^ 0xff;
    await writeFile(file, bytes);

    const v1 = await airlock(['verify', '--config', ocfg]);
    expect(v1.code).toBe(1);
    expect(v1.stdout).toContain(`corrupt-blob`);
    expect(v1.stdout).toContain(victim.digest);
    expect(v1.stderr).toMatch(/problems found/);

    const v2 = await airlock(['verify', '--config', ocfg, '--repair']);
    expect(v2.code).toBe(0);
    expect(v2.stdout).toMatch(/quarantined: \.airlock\/quarantine\/sha256-/);
    await expect(stat(file)).rejects.toThrow();
    const v3 = await airlock(['verify', '--config', ocfg]);
    expect(v3.code).toBe(0);

    const a = await startAirlock(`storage:\n  root: ${store}\nlog:\n  level: warn\n`);
    try {
      const r = await request(`${a.url}/v2/ghcr.io/org/tool/blobs/${victim.digest}`);
      await r.body.dump();
      expect(r.statusCode).toBe(404);
      const pulled = await pullToLayout(`docker://${a.host}/alpine:3.20`, path.join(work, `pull-${n++}`));
      expect(pulled.manifestDigest).toBe(img.alpine!.manifestDigest);
    } finally {
      await a.stop();
    }
  }, 120_000);

  it('serve runs the prefetch list on its schedule', async () => {
    const root = path.join(work, 'scheduled-store');
    const a = await startAirlock(
      [`storage:\n  root: ${root}`, 'log:\n  level: warn', 'upstreams:', '  docker.io:', `    url: ${up.proxy.url}`, `    username: ${READER.user}`, `    password: ${READER.password}`, 'prefetch:', '  schedule: 1h', '  images: [alpine:3.20]'].join('\n'),
    );
    try {
      a.startSchedules();
      const link = path.join(root, 'docker/registry/v2/repositories/library/alpine/_manifests/tags/3.20/current/link');
      const until = Date.now() + 30_000;
      let ok = false;
      while (!ok && Date.now() < until) {
        ok = (await readFile(link, 'utf8').catch(() => '')) === img.alpine!.manifestDigest && (await Promise.all(img.alpine!.blobs.map((b) => stat(blobFile(root, b.digest)).then(() => true, () => false)))).every(Boolean);
        if (!ok) await new Promise((r) => setTimeout(r, 200));
      }
      expect(ok).toBe(true);
    } finally {
      await a.stop();
    }
  }, 60_000);
});
