/**
 * Signed bundles and deltas by inventory, with real parts: a Distribution upstream, the `airlock`
 * command on both sides, openssl checking a signature as an operator would, skopeo pulling what
 * the site imported. Hostile: unsigned, foreign-signed, altered and stripped bundles; tampered,
 * unsigned and foreign-signed inventories. Each is refused with one line and the store unchanged.
 */
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock } from '../helpers/airlock.js';
import { runAirlock } from '../helpers/cli.js';
import { generateImage, type GeneratedImage } from '../helpers/images.js';
import { pullToLayout } from '../helpers/skopeo.js';
import { snapshot } from '../helpers/store-files.js';
import { mirrorUpstreams, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

const run = promisify(execFile);
const airlock = (args: string[]) => runAirlock(args, 120_000);
let work: string;
let up: TestUpstream;
const img: Record<string, GeneratedImage> = {};
let n = 0;

const connected = () => path.join(work, 'connected');
const key = (name: string) => path.join(work, name);

async function config(root: string, extra = ''): Promise<string> {
  const f = path.join(work, `cfg-${n++}.yml`);
  await writeFile(f, `storage:\n  root: ${root}\nlog:\n  level: warn\n${extra}`);
  return f;
}

async function connectedConfig(): Promise<string> {
  return config(connected(), `${mirrorUpstreams(up)}\nprefetch:\n  images:\n    - alpine:3.20\n    - ghcr.io/org/tool:1.4\n`);
}

/** Rewrites a tar entry by entry: `edit` returns new bytes, or null to drop the entry. */
async function rewriteTar(src: string, dest: string, edit: (name: string, body: Buffer) => Buffer | null): Promise<void> {
  const extract = tar.extract();
  const pack = tar.pack();
  const out = pipeline(pack, createWriteStream(dest));
  const input = pipeline(createReadStream(src), extract);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    const body = edit(entry.header.name, Buffer.concat(chunks));
    if (body) await new Promise<void>((r, j) => pack.entry({ ...entry.header, size: body.length }, body, (e) => (e ? j(e) : r())));
  }
  await input;
  pack.finalize();
  await out;
}

function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('airlock:'));
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-trust-'));
  up = await startTestUpstream();
  img.alpine = await generateImage(path.join(work, 'g-alpine'), { layers: 2, layerSize: 200_000, format: 'oci' });
  img.tool = await generateImage(path.join(work, 'g-tool'), { layers: 2, layerSize: 150_000, format: 'docker' });
  await up.push(img.alpine, 'library/alpine', '3.20');
  await up.push(img.tool, 'org/tool', '1.4');
  const p = await airlock(['prefetch', '--config', await connectedConfig()]);
  expect(p.code, p.stderr).toBe(0);
  for (const k of ['ship', 'other', 'site']) expect((await airlock(['keygen', '--out', key(k)])).code).toBe(0);
}, 180_000);

afterAll(async () => {
  await up?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('signed bundles', () => {
  const signed = () => path.join(work, 'signed.tar');

  it('keygen writes an ed25519 pair whose id openssl agrees with, and never overwrites one', async () => {
    expect((await stat(`${key('ship')}.key`)).mode & 0o777).toBe(0o600);
    const again = await airlock(['keygen', '--out', key('ship')]);
    expect(again.code).toBe(2);
    expect(errorLines(again.stderr)).toEqual([`airlock: ${key('ship')}.key exists; keygen never overwrites a key`]);
    const k = await airlock(['keygen', '--out', key('fresh')]);
    const id = /key sha256:([0-9a-f]{64})/.exec(k.stdout)?.[1];
    const der = await run('sh', ['-c', `openssl pkey -pubin -in ${key('fresh')}.pub -outform DER | sha256sum`]);
    expect(der.stdout.slice(0, 64)).toBe(id);
  });

  it('freeze --sign writes a bundle openssl verifies, and import --trust accepts it', async () => {
    const f = await airlock(['freeze', '--config', await connectedConfig(), '--out', signed(), '--sign', `${key('ship')}.key`]);
    expect(f.code, f.stderr).toBe(0);
    expect(f.stdout).toMatch(/signed by sha256:[0-9a-f]{64}/);
    // The receiving side's own check, before the bundle reaches airlock.
    const x = path.join(work, 'x-signed');
    await mkdir(x);
    await run('tar', ['-xf', signed(), '-C', x, 'SHA256SUMS', 'SHA256SUMS.sig', 'airlock-bundle.json']);
    const ok = await run('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', `${key('ship')}.pub`, '-rawin', '-in', path.join(x, 'SHA256SUMS'), '-sigfile', path.join(x, 'SHA256SUMS.sig')]);
    expect(ok.stdout).toMatch(/Signature Verified Successfully/);
    await expect(run('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', `${key('other')}.pub`, '-rawin', '-in', path.join(x, 'SHA256SUMS'), '-sigfile', path.join(x, 'SHA256SUMS.sig')])).rejects.toThrow();
    const header = JSON.parse(await readFile(path.join(x, 'airlock-bundle.json'), 'utf8')) as { signer: { keyId: string } };
    expect(f.stdout).toContain(header.signer.keyId);

    const site = path.join(work, 'site-signed');
    const imp = await airlock(['import', '--config', await config(site), '--trust', `${key('ship')}.pub`, signed()]);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.stdout).toContain(`signed by trusted key ${header.signer.keyId}`);
    const a = await startAirlock(`storage:\n  root: ${site}\nlog:\n  level: warn\n`);
    try {
      expect((await pullToLayout(`docker://${a.host}/alpine:3.20`, path.join(work, `pull-${n++}`))).manifestDigest).toBe(img.alpine!.manifestDigest);
    } finally {
      await a.stop();
    }
  }, 120_000);

  it('with import.trust set, refuses unsigned, foreign-signed, altered and stripped bundles, importing nothing', async () => {
    const site = path.join(work, 'site-guarded');
    // Relative to the configuration file, as every path in it.
    const cfg = await config(site, `import:\n  trust: [${path.basename(key('ship'))}.pub]\n`);
    const cases: Array<[string, () => Promise<string>, RegExp]> = [
      ['unsigned', async () => {
        const f = path.join(work, 'unsigned.tar');
        expect((await airlock(['freeze', '--config', await connectedConfig(), '--out', f])).code).toBe(0);
        return f;
      }, /is not signed, and import\.trust requires a signature by sha256:[0-9a-f]{16} .*; nothing was imported$/],
      ['foreign', async () => {
        const f = path.join(work, 'foreign.tar');
        expect((await airlock(['freeze', '--config', await connectedConfig(), '--out', f, '--sign', `${key('other')}.key`])).code).toBe(0);
        return f;
      }, /is signed by key sha256:[0-9a-f]{16}, which is not trusted \(trusted: sha256:[0-9a-f]{16} .*\); nothing was imported$/],
      ['altered signature', async () => {
        const f = path.join(work, 'altered.tar');
        await rewriteTar(signed(), f, (name, body) => (name === 'SHA256SUMS.sig' ? Buffer.from(body.map((b, i) => (i === 0 ? b ^ 1 : b))) : body));
        return f;
      }, /the signature does not verify with key sha256:[0-9a-f]{16} .*altered after signing; nothing was imported$/],
      ['altered sums', async () => {
        // A SHA256SUMS rewritten to match a swapped entry: exactly what the signature is for.
        const f = path.join(work, 'resummed.tar');
        await rewriteTar(signed(), f, (name, body) => (name === 'SHA256SUMS' ? Buffer.from(body.toString().replace(/^[0-9a-f]{64}/, '0'.repeat(64))) : body));
        return f;
      }, /the signature does not verify/],
      ['stripped', async () => {
        const f = path.join(work, 'stripped.tar');
        await rewriteTar(signed(), f, (name, body) => (name === 'SHA256SUMS.sig' ? null : body));
        return f;
      }, /names signer sha256:[0-9a-f]{16} but carries no signature/],
    ];
    for (const [what, make, message] of cases) {
      const r = await airlock(['import', '--config', cfg, await make()]);
      expect(r.code, what).toBe(2);
      const lines = errorLines(r.stderr);
      expect(lines, what).toHaveLength(1);
      expect(lines[0], what).toMatch(message);
      expect(await snapshot(site), what).toEqual({});
    }
    const ok = await airlock(['import', '--config', cfg, signed()]);
    expect(ok.code, ok.stderr).toBe(0);
  }, 180_000);

  it('refuses a key file that is not a key, or the wrong half, with one line', async () => {
    const junk = path.join(work, 'junk.pem');
    await writeFile(junk, 'not a key\n');
    const f = await airlock(['freeze', '--config', await connectedConfig(), '--out', path.join(work, 'never.tar'), '--sign', junk]);
    expect(f.code).toBe(2);
    expect(errorLines(f.stderr)).toEqual([`airlock: ${junk} is not a private key in PEM form (airlock keygen writes one)`]);
    await expect(stat(path.join(work, 'never.tar'))).rejects.toThrow();
    const i = await airlock(['import', '--config', await config(path.join(work, 'never')), '--trust', `${key('ship')}.key`, signed()]);
    expect(i.code).toBe(2);
    expect(errorLines(i.stderr)).toEqual([`airlock: ${key('ship')}.key holds a private key; trust lists take the public half (KEY.pub)`]);
  }, 60_000);
});

describe('deltas by inventory', () => {
  const site = () => path.join(work, 'site-inv');
  const inv = () => path.join(work, 'site.inv');

  it('freezes exactly what the site lacks of the prefetch list, signed inventory checked, and the site then serves all of it', async () => {
    const siteCfg = await config(site());
    const first = path.join(work, 'first.tar');
    expect((await airlock(['freeze', '--config', await connectedConfig(), '--out', first, 'alpine:3.20'])).code).toBe(0);
    expect((await airlock(['import', '--config', siteCfg, first])).code).toBe(0);

    const w = await airlock(['inventory', '--config', siteCfg, '--out', inv(), '--sign', `${key('site')}.key`]);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stdout).toMatch(/4 blobs, 1 repositories, 1 tags/);
    const doc = JSON.parse(await readFile(inv(), 'utf8')) as { blobs: string[] };
    expect(doc.blobs.sort()).toEqual([...img.alpine!.blobs.map((b) => b.digest), img.alpine!.manifestDigest].sort());

    const delta = path.join(work, 'delta.tar');
    const f = await airlock(['freeze', '--config', await connectedConfig(), '--out', delta, '--have', inv(), '--trust', `${key('site')}.pub`]);
    expect(f.code, f.stderr).toBe(0);
    const header = JSON.parse((await run('tar', ['-xOf', delta, 'airlock-bundle.json'], { maxBuffer: 16 << 20 })).stdout) as { images: Array<{ name: string }>; blobs: Array<{ digest: string }>; inventory: { host: string } };
    expect(header.images.map((i) => i.name)).toEqual(['ghcr.io/org/tool']);
    expect(header.blobs.map((b) => b.digest).sort()).toEqual([...img.tool!.blobs.map((b) => b.digest), img.tool!.manifestDigest].sort());
    const names = (await run('tar', ['-tf', delta])).stdout.split('\n').filter(Boolean);
    expect(names.filter((x) => x.includes('repositories/library/alpine'))).toEqual([]);

    const imp = await airlock(['import', '--config', siteCfg, delta]);
    expect(imp.code, imp.stderr).toBe(0);
    const a = await startAirlock(`storage:\n  root: ${site()}\nlog:\n  level: warn\n`);
    try {
      for (const [ref, i] of [['alpine:3.20', img.alpine!], ['ghcr.io/org/tool:1.4', img.tool!]] as const) {
        expect((await pullToLayout(`docker://${a.host}/${ref}`, path.join(work, `pull-${n++}`))).manifestDigest).toBe(i.manifestDigest);
      }
    } finally {
      await a.stop();
    }
    // Taken again, the site lacks nothing: the next delta carries no blob.
    expect((await airlock(['inventory', '--config', siteCfg, '--out', inv()])).code).toBe(0);
    const empty = path.join(work, 'empty.tar');
    const g = await airlock(['freeze', '--config', await connectedConfig(), '--out', empty, '--have', inv()]);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stdout).toMatch(/0 images, 0 blobs/);
  }, 180_000);

  it('refuses a tampered, unsigned or foreign-signed inventory when trust is asked, writing no bundle', async () => {
    const siteCfg = await config(site());
    const signedInv = path.join(work, 'signed.inv');
    expect((await airlock(['inventory', '--config', siteCfg, '--out', signedInv, '--sign', `${key('site')}.key`])).code).toBe(0);
    const tampered = path.join(work, 'tampered.inv');
    await writeFile(tampered, (await readFile(signedInv, 'utf8')).replace(/"blobs":\["sha256:[0-9a-f]{64}",/, '"blobs":['));
    await writeFile(`${tampered}.sig`, await readFile(`${signedInv}.sig`));
    const unsigned = path.join(work, 'unsigned.inv');
    expect((await airlock(['inventory', '--config', siteCfg, '--out', unsigned])).code).toBe(0);
    const cases: Array<[string, string, RegExp]> = [
      [tampered, `${key('site')}.pub`, /signature does not verify .*altered after signing/],
      [unsigned, `${key('site')}.pub`, /is not signed/],
      [signedInv, `${key('other')}.pub`, /is signed by key sha256:[0-9a-f]{16}, which is not trusted/],
    ];
    for (const [file, trust, message] of cases) {
      const out = path.join(work, `refused-${n++}.tar`);
      const r = await airlock(['freeze', '--config', await connectedConfig(), '--out', out, '--have', file, '--trust', trust]);
      expect(r.code, file).toBe(2);
      expect(errorLines(r.stderr), file).toHaveLength(1);
      expect(errorLines(r.stderr)[0], file).toMatch(message);
      await expect(stat(out)).rejects.toThrow();
    }
    const junk = path.join(work, 'junk.inv');
    await writeFile(junk, '{"format":"something else"}');
    const r = await airlock(['freeze', '--config', await connectedConfig(), '--out', path.join(work, 'x.tar'), '--have', junk]);
    expect(r.code).toBe(2);
    expect(errorLines(r.stderr)[0]).toMatch(/junk\.inv is not an airlock inventory \(format: /);
  }, 120_000);
});
