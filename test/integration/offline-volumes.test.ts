/**
 * Bundles on removable media with real parts: freeze cuts the tar into volumes, sha256sum checks
 * each against the set's checksum file, `cat NAME.* | tar -x` still gives the layout, and import
 * reads the volumes in order without joining them, naming a missing or corrupt volume and
 * publishing nothing until every one is verified. skopeo pulls what was imported.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock } from '../helpers/airlock.js';
import { runAirlock } from '../helpers/cli.js';
import { generateImage, type GeneratedImage } from '../helpers/images.js';
import { pullToLayout } from '../helpers/skopeo.js';
import { snapshot } from '../helpers/store-files.js';
import { mirrorUpstreams, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

const run = promisify(execFile);
const airlock = (args: string[]) => runAirlock(args, 120_000);
const VOLUME = 256 * 1024;
let work: string;
let up: TestUpstream;
let image: GeneratedImage;
let connectedCfg: string;
let n = 0;

async function siteConfig(root: string): Promise<string> {
  const f = path.join(work, `site-${n++}.yml`);
  await writeFile(f, `storage:\n  root: ${root}\nlog:\n  level: warn\n`);
  return f;
}

function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('airlock:'));
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-volumes-'));
  up = await startTestUpstream();
  image = await generateImage(path.join(work, 'g'), { layers: 3, layerSize: 300_000, format: 'oci' });
  await up.push(image, 'library/app', '1.0');
  connectedCfg = path.join(work, 'connected.yml');
  await writeFile(connectedCfg, `storage:\n  root: ${path.join(work, 'connected')}\nlog:\n  level: warn\n${mirrorUpstreams(up)}\nprefetch:\n  images: [app:1.0]\n`);
  const p = await airlock(['prefetch', '--config', connectedCfg]);
  expect(p.code, p.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await up?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('bundles cut into volumes', () => {
  const discs = () => path.join(work, 'discs');
  const base = () => path.join(discs(), 'site.tar');

  it('writes fixed-size volumes each checked by its own line, which cat | tar -x turns back into the layout', async () => {
    await mkdir(discs());
    // A longer earlier set of the same name: its extra volumes must not survive to join this one.
    for (const i of ['007', '008']) await writeFile(`${base()}.${i}`, 'stale');
    const f = await airlock(['freeze', '--config', connectedCfg, '--out', base(), '--volume-size', '256KiB']);
    expect(f.code, f.stderr).toBe(0);
    const files = (await readdir(discs())).sort();
    const volumes = files.filter((x) => /^site\.tar\.\d{3}$/.test(x));
    expect(volumes.length).toBeGreaterThanOrEqual(4);
    expect(files).toEqual(['site.tar-volumes.sha256', ...volumes]);
    expect(f.stdout).toContain(`wrote ${volumes.length} volumes site.tar.000 … ${volumes.at(-1)} and site.tar-volumes.sha256`);
    for (const v of volumes.slice(0, -1)) expect((await stat(path.join(discs(), v))).size).toBe(VOLUME);
    // One disc at a time, as an operator checks them.
    const one = await run('sha256sum', ['-c', '--ignore-missing', 'site.tar-volumes.sha256'], { cwd: discs() });
    expect(one.stdout.trim().split('\n')).toHaveLength(volumes.length);

    const x = path.join(work, 'x');
    await mkdir(x);
    await run('sh', ['-c', `cat ${base()}.* | tar -x -C ${x}`]);
    expect((await run('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], { cwd: x })).stdout).toBe('');
    const header = JSON.parse(await readFile(path.join(x, 'airlock-bundle.json'), 'utf8')) as { images: Array<{ digest: string }> };
    expect(header.images.map((i) => i.digest)).toEqual([image.manifestDigest]);
  }, 60_000);

  it('imports from the first volume, and the site serves the image', async () => {
    const site = path.join(work, 'site');
    const r = await airlock(['import', '--config', await siteConfig(site), `${base()}.000`]);
    expect(r.code, r.stderr).toBe(0);
    const x = path.join(work, 'x');
    expect(await snapshot(site)).toEqual(await snapshot(x));
    const a = await startAirlock(`storage:\n  root: ${site}\nlog:\n  level: warn\n`);
    try {
      const pulled = await pullToLayout(`docker://${a.host}/app:1.0`, path.join(work, 'pull'));
      expect(pulled.manifestDigest).toBe(image.manifestDigest);
      for (const b of image.blobs) expect(pulled.blobs).toContain(b.digest);
    } finally {
      await a.stop();
    }
  }, 60_000);

  it('names a corrupt or missing volume, or a set not started at its first, and publishes nothing', async () => {
    const set = async (name: string, change: (b: string) => Promise<void>) => {
      const dir = path.join(work, name);
      await mkdir(dir);
      for (const f of await readdir(discs())) await copyFile(path.join(discs(), f), path.join(dir, f));
      await change(path.join(dir, 'site.tar'));
      return path.join(dir, 'site.tar');
    };
    const flip = async (file: string, at: number) => {
      const buf = await readFile(file);
      buf[at] = (buf[at] as number) ^ 0x01;
      await writeFile(file, buf);
    };
    const cases: Array<[string, (b: string) => Promise<void>, RegExp]> = [
      // In the tar's end padding: only the volume's checksum can see it.
      ['padding', async (b) => {
        const files = (await readdir(path.dirname(b))).filter((f) => /\.\d{3}$/.test(f)).sort();
        const last = path.join(path.dirname(b), files.at(-1) as string);
        await flip(last, (await stat(last)).size - 10);
      }, /^airlock: volume site\.tar\.\d{3} is corrupt \(its sha256 is [0-9a-f]{64}, site\.tar-volumes\.sha256 says [0-9a-f]{64}\): re-burn it; nothing was imported$/],
      // In the last volume's last tar header (SHA256SUMS's): the tar parser fails before the
      // volume's end, yet the operator is told which disc to re-burn, not what the parser met.
      ['header', async (b) => {
        const files = (await readdir(path.dirname(b))).filter((f) => /\.\d{3}$/.test(f)).sort();
        let offset = 0;
        for (const f of files.slice(0, -1)) offset += (await stat(path.join(path.dirname(b), f))).size;
        const last = path.join(path.dirname(b), files.at(-1) as string);
        const bytes = await readFile(last);
        let header = -1;
        for (let at = (512 - (offset % 512)) % 512; at + 512 <= bytes.length; at += 512) if (bytes.toString('latin1', at + 257, at + 262) === 'ustar') header = at;
        expect(header).toBeGreaterThanOrEqual(0);
        await flip(last, header);
      }, /^airlock: volume site\.tar\.\d{3} is corrupt \(its sha256 is [0-9a-f]{64}, site\.tar-volumes\.sha256 says [0-9a-f]{64}\): re-burn it; nothing was imported$/],
      // The first volume's first header: the parser fails at once, long before that volume's end.
      ['first header', async (b) => flip(`${b}.000`, 0), /^airlock: volume site\.tar\.000 is corrupt \(its sha256 is [0-9a-f]{64}, site\.tar-volumes\.sha256 says [0-9a-f]{64}\): re-burn it; nothing was imported$/],
      ['layer', async (b) => flip(`${b}.001`, 1000), /site\.tar\.001/],
      ['missing', async (b) => rm(`${b}.002`), /^airlock: volume site\.tar\.002 is missing \(site\.tar-volumes\.sha256 lists \d+\); nothing was imported$/],
      ['missing, no checksums', async (b) => {
        await rm(`${b}.002`);
        await rm(`${b}-volumes.sha256`);
      }, /is site\.tar\.002 missing\?\)$/],
    ];
    for (const [what, change, message] of cases) {
      const site = path.join(work, `site-${what.replace(/\W+/g, '-')}`);
      const r = await airlock(['import', '--config', await siteConfig(site), `${await set(what.replace(/\W+/g, '-'), change)}.000`]);
      expect(r.code, what).toBe(2);
      expect(errorLines(r.stderr), what).toHaveLength(1);
      expect(errorLines(r.stderr)[0], what).toMatch(message);
      expect(await snapshot(site), what).toEqual({});
    }
    const second = await airlock(['import', '--config', await siteConfig(path.join(work, 'site-second')), `${base()}.001`]);
    expect(second.code).toBe(2);
    expect(errorLines(second.stderr)).toEqual([`airlock: ${base()}.001: a set of volumes is imported from its first, site.tar.000`]);
  }, 120_000);

  it('refuses a volume size too small to be a disc, with one line', async () => {
    const r = await airlock(['freeze', '--config', connectedCfg, '--out', path.join(work, 'tiny.tar'), '--volume-size', '1KiB']);
    expect(r.code).toBe(2);
    expect(errorLines(r.stderr)).toEqual(['airlock: freeze --volume-size: at least 64.0 KiB']);
    expect((await readdir(work)).filter((f) => f.startsWith('tiny') || f.includes('.partial'))).toEqual([]);
  });
});

describe('airlock carried in the bundle', () => {
  it('freeze --kit puts the release kit under airlock-kit/, checked by SHA256SUMS and by import, never stored', async () => {
    const kit = path.join(work, 'airlock-9.9.9-linux-amd64.tar.gz');
    const folder = path.join(work, 'kit-src');
    await mkdir(path.join(folder, 'airlock-9.9.9-linux-amd64'), { recursive: true });
    await writeFile(path.join(folder, 'airlock-9.9.9-linux-amd64/install.sh'), '#!/bin/sh\necho installed\n');
    await run('tar', ['-czf', kit, '-C', folder, 'airlock-9.9.9-linux-amd64']);
    const out = path.join(work, 'with-kit.tar');
    const f = await airlock(['freeze', '--config', connectedCfg, '--out', out, '--kit', kit, '--volume-size', '256KiB']);
    expect(f.code, f.stderr).toBe(0);
    expect(f.stdout).toContain('carries airlock-9.9.9-linux-amd64.tar.gz');
    // The walk-through's first step at the site: the kit out of the volumes, before any airlock runs.
    const x = path.join(work, 'x-kit');
    await mkdir(x);
    await run('sh', ['-c', `cat ${out}.* | tar -x -C ${x} airlock-kit/ SHA256SUMS && cd ${x} && sha256sum -c --ignore-missing SHA256SUMS`]);
    expect(await readFile(path.join(x, 'airlock-kit/airlock-9.9.9-linux-amd64.tar.gz'))).toEqual(await readFile(kit));
    // Right after the header, so it is on the first disc.
    expect((await run('sh', ['-c', `tar -tf ${out}.000 2>/dev/null | sed -n 2p`])).stdout.trim()).toBe('airlock-kit/airlock-9.9.9-linux-amd64.tar.gz');

    const site = path.join(work, 'site-kit');
    const r = await airlock(['import', '--config', await siteConfig(site), `${out}.000`]);
    expect(r.code, r.stderr).toBe(0);
    expect(Object.keys(await snapshot(site)).filter((k) => k.includes('airlock-kit'))).toEqual([]);
    expect(await readdir(site)).not.toContain('airlock-kit');

    const missing = await airlock(['freeze', '--config', connectedCfg, '--out', path.join(work, 'no-kit.tar'), '--kit', path.join(work, 'airlock-1.0.0-linux-amd64.tar.gz')]);
    expect(missing.code).toBe(2);
    expect(errorLines(missing.stderr)).toEqual([`airlock: cannot read the release kit ${path.join(work, 'airlock-1.0.0-linux-amd64.tar.gz')}: no such file`]);
    const misnamed = await airlock(['freeze', '--config', connectedCfg, '--out', path.join(work, 'no-kit.tar'), '--kit', connectedCfg]);
    expect(errorLines(misnamed.stderr)).toEqual([`airlock: ${connectedCfg} is not named like an airlock release kit (airlock-VERSION-linux-ARCH.tar.gz)`]);
  }, 60_000);
});
