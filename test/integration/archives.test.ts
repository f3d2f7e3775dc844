/**
 * Image archives in and out, with real tools: skopeo writes docker-archive, oci-archive and OCI
 * layout directories of generated images; `airlock load` adds them to a store that an airlock
 * with no upstream then serves to skopeo. `airlock save` writes archives that skopeo, podman
 * (vfs storage of its own) and ctr (a private containerd) read back. Hostile archives (truncated,
 * foreign, a layer that does not match its diff_id, names leading outside the archive) are
 * refused with one line and exit 2, the store untouched.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock } from '../helpers/airlock.js';
import { runAirlock } from '../helpers/cli.js';
import { generateImage, generateIndex, type GeneratedImage } from '../helpers/images.js';
import { pullToLayout, skopeoCopy } from '../helpers/skopeo.js';
import { blobFile, snapshot } from '../helpers/store-files.js';

const run = promisify(execFile);
let work: string;
let root: string;
let cfg: string;
const img: Record<string, GeneratedImage> = {};
const airlock = (args: string[], config = cfg) => runAirlock([...args, '--config', config], 60_000);
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const tagLink = (name: string, tag: string) => readFile(path.join(root, 'docker/registry/v2/repositories', name, '_manifests/tags', tag, 'current/link'), 'utf8');
const blob = (d: string) => readFile(blobFile(root, d));
const manifestOf = async (d: string) => JSON.parse((await blob(d)).toString()) as { mediaType?: string; config: { digest: string }; layers: Array<{ digest: string; mediaType: string }>; manifests?: unknown[] };
const configOf = (g: GeneratedImage) => JSON.parse(g.manifestBytes.toString()).config.digest as string;
const layersOf = (g: GeneratedImage) => (JSON.parse(g.manifestBytes.toString()).layers as Array<{ digest: string }>).map((l) => l.digest);

/** A tar written entry by entry, for archives no tool would write. */
async function writeTar(file: string, entries: Array<{ name: string; body?: Buffer; type?: 'symlink'; linkname?: string }>): Promise<void> {
  const pack = tar.pack();
  const out = createWriteStream(file);
  pack.pipe(out);
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      if (e.type === 'symlink') pack.entry({ name: e.name, type: 'symlink', linkname: e.linkname }, (err) => (err ? reject(err) : resolve()));
      else pack.entry({ name: e.name }, e.body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await finished(out);
}

/** Expects a refusal: exit 2, one line naming `what`, the store's files as they were. */
async function refused(args: string[], what: RegExp, config = cfg): Promise<void> {
  const before = await snapshot(root);
  const r = await airlock(args, config);
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('airlock:'))).toHaveLength(1);
  expect(r.stderr).toMatch(what);
  expect(await snapshot(root)).toEqual(before);
  // Nothing staged is left behind either.
  const tmp = path.join(root, '.airlock/tmp');
  expect(await stat(tmp).then(async () => (await run('find', [tmp, '-type', 'f'])).stdout, () => '')).toBe('');
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-archives-'));
  root = path.join(work, 'store');
  cfg = path.join(work, 'mirror.yml');
  await writeFile(cfg, `storage:\n  root: ${root}\nlog:\n  level: warn\n`);
  img.app = await generateImage(path.join(work, 'g-app'), { layers: 2, layerSize: 200_000, format: 'oci' });
  // Layers past 1 MiB: loading gzips them as several members, which podman must read back.
  img.tool = await generateImage(path.join(work, 'g-tool'), { layers: 2, layerSize: 2_500_000, format: 'docker' });
  img.multi = await generateIndex(path.join(work, 'g-multi'), { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }], layers: 1, layerSize: 100_000, format: 'oci' });
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('airlock load', () => {
  it('loads a classic docker-archive: schema2 manifest, config kept, layers gzipped deterministically; twice gives the same digests', async () => {
    const file = path.join(work, 'tool-docker.tar');
    await skopeoCopy(img.tool!.source, `docker-archive:${file}:org/tool:1.0`);
    const r = await airlock(['load', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^loaded 1 image into .*: org\/tool:1\.0; 4 blobs added/);
    const d = await tagLink('org/tool', '1.0');
    const m = await manifestOf(d);
    expect(m.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(m.config.digest).toBe(configOf(img.tool!));
    expect(sha256(await blob(m.config.digest))).toBe(m.config.digest);
    // Each layer is gzip whose content is the original layer (its diff_id).
    expect(await Promise.all(m.layers.map(async (l) => sha256(gunzipSync(await blob(l.digest)))))).toEqual(layersOf(img.tool!));
    expect(m.layers.every((l) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip')).toBe(true);
    await stat(path.join(root, '.airlock/local')).catch(() => expect.fail('no local marks'));
    const again = await airlock(['load', file]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/0 blobs added .*, 4 already present; tags: 0 added, 0 moved, 1 unchanged/);
    expect(await tagLink('org/tool', '1.0')).toBe(d);

    // Tar order is arbitrary: manifest.json first, layers after it, into another store: same
    // digests. And the layers named as Docker before 25 names them (`<id>/layer.tar`, here the
    // symbolic links skopeo writes to `../<diff_id>.tar`).
    const x = path.join(work, 'reorder');
    await mkdir(x);
    await run('tar', ['-C', x, '-xf', file]);
    const links = new Map<string, string>();
    for (const e of await readdir(x, { withFileTypes: true })) {
      if (e.isDirectory()) links.set(path.basename(await readlink(path.join(x, e.name, 'layer.tar'))), `${e.name}/layer.tar`);
    }
    const mf = JSON.parse(await readFile(path.join(x, 'manifest.json'), 'utf8')) as Array<{ Layers: string[] }>;
    mf[0]!.Layers = mf[0]!.Layers.map((l) => links.get(l)!);
    expect(mf[0]!.Layers.every((l) => l.endsWith('/layer.tar'))).toBe(true);
    await writeFile(path.join(x, 'manifest.json'), JSON.stringify(mf));
    const rest = (await run('tar', ['-tf', file])).stdout.split('\n').filter((n) => n && n !== 'manifest.json');
    const reordered = path.join(work, 'reordered.tar');
    await run('tar', ['-C', x, '-cf', reordered, 'manifest.json', ...rest.reverse()]);
    const other = path.join(work, 'other-store');
    const otherCfg = path.join(work, 'other.yml');
    await writeFile(otherCfg, `storage:\n  root: ${other}\nlog:\n  level: warn\n`);
    const r2 = await airlock(['load', reordered], otherCfg);
    expect(r2.code, r2.stderr).toBe(0);
    expect(await readFile(path.join(other, 'docker/registry/v2/repositories/org/tool/_manifests/tags/1.0/current/link'), 'utf8')).toBe(d);
  });

  it("applies the upstreams' deny list as import does (--force loads anyway)", async () => {
    const denyCfg = path.join(work, 'deny.yml');
    await writeFile(denyCfg, `storage:\n  root: ${root}\nlog:\n  level: warn\nupstreams:\n  docker.io:\n    url: http://127.0.0.1:9\n    deny: ["org/banned"]\n`);
    const file = path.join(work, 'tool-docker.tar');
    await refused(['load', file, '--name', 'org/banned'], /deny lists deny, so nothing was loaded: org\/banned: .*deny "org\/banned"/, denyCfg);
    const forced = await airlock(['load', file, '--name', 'org/banned', '--force'], denyCfg);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toContain('loaded although denied (--force): org/banned');
    expect(await tagLink('org/banned', '1.0')).toBe(await tagLink('org/tool', '1.0'));
  });

  it('loads an oci-archive of a multi-arch index byte for byte, and an OCI layout directory (--name for a tag-only ref)', async () => {
    const file = path.join(work, 'multi-oci.tar');
    await skopeoCopy(img.multi!.source, `oci-archive:${file}:multi:2`, { all: true });
    const r = await airlock(['load', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(await tagLink('library/multi', '2')).toBe(img.multi!.manifestDigest);
    for (const b of img.multi!.blobs) expect(sha256(await blob(b.digest))).toBe(b.digest);

    const dir = path.join(work, 'app-layout');
    await skopeoCopy(img.app!.source, `oci:${dir}:v7`);
    await refused(['load', dir], /has only a tag \(v7\), no name: give --name/);
    const named = await airlock(['load', dir, '--name', 'ghcr.io/org/app']);
    expect(named.code, named.stderr).toBe(0);
    expect(await tagLink('ghcr.io/org/app', 'v7')).toBe(img.app!.manifestDigest);
  });

  it('loads a Docker 25+ docker save (OCI layout plus manifest.json), naming images from the annotations', async () => {
    const dir = path.join(work, 'd25');
    await skopeoCopy(img.app!.source, `oci:${dir}:latest`);
    const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));
    index.manifests[0].annotations = { 'io.containerd.image.name': 'docker.io/org/d25:3', 'org.opencontainers.image.ref.name': '3' };
    await writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
    await writeFile(path.join(dir, 'manifest.json'), JSON.stringify([{ Config: `blobs/sha256/${configOf(img.app!).slice(7)}`, RepoTags: ['org/d25:3'], Layers: layersOf(img.app!).map((l) => `blobs/sha256/${l.slice(7)}`) }]));
    const file = path.join(work, 'd25.tar');
    await run('tar', ['-C', dir, '-cf', file, '.']);
    const r = await airlock(['load', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(await tagLink('org/d25', '3')).toBe(img.app!.manifestDigest);
  });

  it('serves loaded images to skopeo from an airlock with no upstream', async () => {
    const verify = await airlock(['verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const a = await startAirlock(`storage:\n  root: ${root}\nlog:\n  level: warn\n`);
    try {
      const pulled = await pullToLayout(`docker://${a.host}/org/tool:1.0`, path.join(work, 'pulled-tool'));
      expect(pulled.manifestDigest).toBe(await tagLink('org/tool', '1.0'));
      expect(pulled.blobs).toContain(configOf(img.tool!));
      const multi = await pullToLayout(`docker://${a.host}/library/multi:2`, path.join(work, 'pulled-multi'), { all: true });
      expect(multi.manifestDigest).toBe(img.multi!.manifestDigest);
    } finally {
      await a.stop();
    }
  });

  it('refuses a truncated archive, a foreign tar, a layer that does not match its diff_id, a blob that does not match its digest, and names leading outside', async () => {
    const good = path.join(work, 'tool-docker.tar');
    const cut = path.join(work, 'cut.tar');
    await cp(good, cut);
    await truncate(cut, Math.floor((await stat(good)).size / 2));
    await refused(['load', cut], /cut\.tar is truncated or damaged in entry \S+/);

    const foreign = path.join(work, 'foreign.tar');
    await writeTar(foreign, [{ name: 'etc/hosts', body: Buffer.from('127.0.0.1 localhost\n') }]);
    await refused(['load', foreign], /foreign\.tar is not an image archive: it has neither manifest\.json/);

    // A layer with one byte changed (same size): the config's diff_id gives it away.
    const x = path.join(work, 'x-docker');
    await mkdir(x);
    await run('tar', ['-C', x, '-xf', good]);
    const layer = path.join(x, `${layersOf(img.tool!)[1]!.slice(7)}.tar`);
    const bytes = await readFile(layer);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 2000) ^ 0xff, bytes.length - 2000);
    await writeFile(layer, bytes);
    const bad = path.join(work, 'bad-layer.tar');
    await run('tar', ['-C', x, '-cf', bad, '.']);
    await refused(['load', bad], /does not match diff_id 2 of/);

    const y = path.join(work, 'y-layout');
    await skopeoCopy(img.app!.source, `oci:${y}:org/app:y`);
    const yl = path.join(y, 'blobs/sha256', layersOf(img.app!)[0]!.slice(7));
    const yb = await readFile(yl);
    yb.writeUInt8(yb.readUInt8(1000) ^ 0xff, 1000);
    await writeFile(yl, yb);
    await refused(['load', y], /content does not match its digest/);

    const evil = path.join(work, 'evil.tar');
    await writeTar(evil, [{ name: '../../etc/evil', body: Buffer.from('x') }]);
    await refused(['load', evil], /a path that leads outside the archive/);
    const link = path.join(work, 'evil-link.tar');
    await writeTar(link, [{ name: 'manifest.json', type: 'symlink', linkname: '../../../etc/passwd' }]);
    await refused(['load', link], /links outside the archive/);
  });
});

describe('airlock save', () => {
  it('writes a docker-archive that skopeo and podman load (one platform of an index)', async () => {
    const out = path.join(work, 'saved-docker.tar');
    const toolDigest = await tagLink('org/tool', '1.0');
    const r = await airlock(['save', 'org/tool:1.0', 'multi:2', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const back = await pullToLayout(`docker-archive:${out}:docker.io/org/tool:1.0`, path.join(work, 'back-tool'));
    expect(back.blobs).toContain(configOf(img.tool!));
    for (const l of layersOf(img.tool!)) expect(back.blobs).toContain(l);
    const amd64 = img.multi!.children[0]!;
    const multi = await pullToLayout(`docker-archive:${out}:docker.io/library/multi:2`, path.join(work, 'back-multi'));
    expect(multi.blobs).toContain(configOf(amd64));

    // Round trip into the other store (which loaded org/tool:1.0 before), gzipped as
    // `docker save | gzip` would be: the same manifest for org/tool.
    await run('gzip', ['-k', out]);
    const again = await airlock(['load', `${out}.gz`], path.join(work, 'other.yml'));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/: org\/tool:1\.0, library\/multi:2; \d+ blobs added .* tags: 1 added, 0 moved, 1 unchanged/);
    expect(await readFile(path.join(work, 'other-store/docker/registry/v2/repositories/org/tool/_manifests/tags/1.0/current/link'), 'utf8')).toBe(toolDigest);

    const dir = path.join(work, 'podman');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'containers.conf'), '[engine]\nevents_logger = "file"\ncgroup_manager = "cgroupfs"\n');
    const podman = (args: string[]) =>
      run('podman', ['--root', path.join(dir, 'storage'), '--runroot', path.join(dir, 'run'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', ...args], {
        timeout: 120_000,
        env: { ...process.env, CONTAINERS_CONF: path.join(dir, 'containers.conf') },
      });
    const loaded = await podman(['load', '-i', out]);
    expect(loaded.stdout).toContain('docker.io/org/tool:1.0');
    const inspect = JSON.parse((await podman(['image', 'inspect', 'docker.io/org/tool:1.0', 'docker.io/library/multi:2'])).stdout) as Array<{ Id: string }>;
    expect(inspect.map((i) => `sha256:${i.Id}`)).toEqual([configOf(img.tool!), configOf(amd64)]);
  }, 120_000);

  it('writes an OCI archive that skopeo and ctr import, the index kept whole', async () => {
    const out = path.join(work, 'saved-oci.tar');
    const r = await airlock(['save', 'multi:2', 'ghcr.io/org/app:v7', '--format', 'oci', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const back = await pullToLayout(`oci-archive:${out}:2`, path.join(work, 'back-oci'), { all: true });
    expect(back.manifestDigest).toBe(img.multi!.manifestDigest);

    const dir = path.join(work, 'containerd');
    const sock = path.join(dir, 'containerd.sock');
    await mkdir(dir, { recursive: true });
    await writeFile(
      path.join(dir, 'config.toml'),
      ['version = 2', `root = "${dir}/root"`, `state = "${dir}/state"`, 'disabled_plugins = ["io.containerd.grpc.v1.cri"]', '[grpc]', `  address = "${sock}"`, '[ttrpc]', `  address = "${sock}.ttrpc"`, '[debug]', `  address = "${sock}.debug"`].join('\n'),
    );
    const containerd: ChildProcess = spawn('containerd', ['--config', path.join(dir, 'config.toml')], { stdio: 'ignore' });
    try {
      const until = Date.now() + 20_000;
      for (;;) {
        try {
          await run('ctr', ['--address', sock, 'version'], { timeout: 5000 });
          break;
        } catch (e) {
          if (Date.now() > until) throw e;
          await new Promise((res) => setTimeout(res, 200));
        }
      }
      await run('ctr', ['--address', sock, '-n', 'airlock', 'images', 'import', '--all-platforms', out], { timeout: 60_000 });
      const ls = (await run('ctr', ['--address', sock, '-n', 'airlock', 'images', 'ls'], { timeout: 30_000 })).stdout;
      expect(ls).toMatch(new RegExp(`docker\\.io/library/multi:2\\s+\\S+\\s+${img.multi!.manifestDigest}`));
      expect(ls).toMatch(new RegExp(`ghcr\\.io/org/app:v7\\s+\\S+\\s+${img.app!.manifestDigest}`));
      // The docker format too: containerd writes a manifest of its own around our config and layers.
      await run('ctr', ['--address', sock, '-n', 'airlock', 'images', 'import', path.join(work, 'saved-docker.tar')], { timeout: 60_000 });
      expect((await run('ctr', ['--address', sock, '-n', 'airlock', 'images', 'ls', '-q'], { timeout: 30_000 })).stdout).toContain('docker.io/org/tool:1.0');
      const content = (await run('ctr', ['--address', sock, '-n', 'airlock', 'content', 'ls', '-q'], { timeout: 30_000 })).stdout;
      for (const d of [configOf(img.tool!), ...(await manifestOf(await tagLink('org/tool', '1.0'))).layers.map((l) => l.digest)]) expect(content).toContain(d);
    } finally {
      const exited = new Promise((res) => containerd.once('exit', res));
      containerd.kill('SIGTERM');
      await exited;
    }
  }, 120_000);
});
