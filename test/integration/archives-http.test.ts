/**
 * Image archives over HTTP (`/ui/api/archive`), under the registry's rules: an archive skopeo
 * wrote is uploaded by a user with push rights and pulled back with skopeo; images are
 * downloaded as archives skopeo reads, byte for byte what `airlock save` writes. Next to each
 * happy path, the hostile one: no login, no push right, a mirrored name (which would shadow the
 * upstream for every client), a cross-site content type, a garbage body, a repository the user
 * may not pull, a read-only store, a blob entry linked to other content, a layer borrowed
 * from another repository, a gzip bomb. Refused uploads leave the store's files as they were.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import bcrypt from 'bcryptjs';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock, type RunningAirlock } from '../helpers/airlock.js';
import { runAirlock } from '../helpers/cli.js';
import { generateImage, generateIndex, type GeneratedImage } from '../helpers/images.js';
import { pullToLayout, skopeoCopy } from '../helpers/skopeo.js';
import { blobFile, snapshot } from '../helpers/store-files.js';
import { mirrorUpstreams, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

const run = promisify(execFile);
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const OPS = basic('ops', 'ops-pw');
const VIEWER = basic('viewer', 'viewer-pw');
const ADMIN = basic('admin', 'admin-pw');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let work: string;
let root: string;
let cfg: string;
let up: TestUpstream;
let a: RunningAirlock;
const img = {} as Record<'app' | 'multi' | 'base', GeneratedImage>;
const configOf = (g: GeneratedImage) => (JSON.parse(g.manifestBytes.toString()) as { config: { digest: string } }).config.digest;
const tagLink = (name: string, tag: string) => readFile(path.join(root, 'docker/registry/v2/repositories', name, '_manifests/tags', tag, 'current/link'), 'utf8');

function yml(extra: string[] = []): string {
  return [
    'listen: 127.0.0.1:0',
    `storage:\n  root: ${root}`,
    'log:\n  level: warn',
    `audit:\n  file: ${path.join(work, 'audit.log')}`,
    `auth:\n  htpasswd: ${path.join(work, 'htpasswd')}\n  rules:\n    - users: ["admin"]\n      actions: [pull, push, delete]\n    - users: ["ops"]\n      repositories: ["team/**"]\n      actions: [pull, push]\n    - users: ["ops"]\n      actions: [pull]\n    - users: ["viewer"]\n      repositories: ["team/app"]\n      actions: [pull]`,
    'push:\n  repositories: ["team/**"]',
    mirrorUpstreams(up),
    ...extra,
    '',
  ].join('\n');
}

async function upload(file: string, authorization: string | undefined, opts: { type?: string; query?: string; to?: RunningAirlock } = {}): Promise<{ status: number; body: { images?: Array<{ name: string; tag: string; digest: string }>; errors?: Array<{ code: string; message: string }> } }> {
  const size = (await stat(file)).size;
  const r = await request(`${(opts.to ?? a).url}/ui/api/archive${opts.query ?? ''}`, {
    method: 'POST',
    headers: { 'content-type': opts.type ?? 'application/x-tar', 'content-length': String(size), ...(authorization ? { authorization } : {}) },
    body: createReadStream(file),
  });
  return { status: r.statusCode, body: (await r.body.json()) as never };
}

async function download(query: string, authorization?: string): Promise<{ status: number; body: Buffer; type?: string }> {
  const r = await request(`${a.url}/ui/api/archive?${query}`, { headers: authorization ? { authorization } : {} });
  return { status: r.statusCode, body: Buffer.from(await r.body.arrayBuffer()), type: r.headers['content-type'] as string | undefined };
}

/** A refused upload: the status and code, and the store's files (and temp files) as they were. */
async function refusedUpload(file: string, authorization: string | undefined, status: number, code: string, message: RegExp, opts: { type?: string; query?: string } = {}): Promise<void> {
  const before = await snapshot(root);
  const r = await upload(file, authorization, opts);
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.body.errors?.[0]?.code).toBe(code);
  expect(r.body.errors?.[0]?.message).toMatch(message);
  expect(await snapshot(root)).toEqual(before);
  expect((await run('find', [path.join(root, '.airlock/tmp'), '-type', 'f'])).stdout).toBe('');
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-archives-http-'));
  root = path.join(work, 'store');
  cfg = path.join(work, 'mirror.yml');
  await writeFile(path.join(work, 'htpasswd'), ['ops:ops-pw', 'viewer:viewer-pw', 'admin:admin-pw'].map((l) => `${l.split(':')[0]}:${bcrypt.hashSync(l.split(':')[1]!, 5)}`).join('\n') + '\n');
  up = await startTestUpstream();
  img.app = await generateImage(path.join(work, 'g-app'), { layers: 2, layerSize: 300_000, format: 'docker' });
  img.multi = await generateIndex(path.join(work, 'g-multi'), { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }], layers: 1, layerSize: 100_000, format: 'oci' });
  img.base = await generateImage(path.join(work, 'g-base'), { layers: 1, layerSize: 120_000, format: 'oci' });
  await up.push(img.base, 'library/base', '1');
  await writeFile(cfg, yml());
  a = await startAirlock(yml());
}, 120_000);

afterAll(async () => {
  await a?.stop();
  await up?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('archive upload (POST /ui/api/archive)', () => {
  it('loads a docker-archive skopeo wrote into a local name; skopeo pulls it back; the audit line names the user', async () => {
    const file = path.join(work, 'app.tar');
    await skopeoCopy(img.app.source, `docker-archive:${file}:team/app:1.0`);
    const r = await upload(file, OPS);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.images).toEqual([{ name: 'team/app', tag: '1.0', digest: expect.stringMatching(/^sha256:/) }]);
    expect(await tagLink('team/app', '1.0')).toBe(r.body.images![0]!.digest);
    const pulled = await pullToLayout(`docker://${a.host}/team/app:1.0`, path.join(work, 'pulled-app'), { creds: 'ops:ops-pw' });
    expect(pulled.manifestDigest).toBe(r.body.images![0]!.digest);
    expect(pulled.blobs).toContain(configOf(img.app));
    const audit = (await readFile(path.join(work, 'audit.log'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit.find((l) => l.audit === 'load')).toMatchObject({ user: 'ops', address: '127.0.0.1', images: ['team/app:1.0'] });
    // ?name= renames, as `airlock load --name` does.
    const renamed = await upload(file, OPS, { query: '?name=team/app-copy:2' });
    expect(renamed.status, JSON.stringify(renamed.body)).toBe(201);
    expect(await tagLink('team/app-copy', '2')).toBe(r.body.images![0]!.digest);
  });

  it('refuses an upload without a login (401 with a challenge), and one by a user without push (403)', async () => {
    const file = path.join(work, 'app.tar');
    await refusedUpload(file, undefined, 401, 'UNAUTHORIZED', /log in to upload/);
    await refusedUpload(file, VIEWER, 403, 'DENIED', /may not push to team\/app/);
    await refusedUpload(file, basic('ops', 'wrong'), 401, 'UNAUTHORIZED', /./);
  });

  it('refuses to load into a mirrored name, even for a user who may push anywhere: it would shadow the upstream', async () => {
    const file = path.join(work, 'evil-base.tar');
    await skopeoCopy(img.app.source, `docker-archive:${file}:base:1`);
    await refusedUpload(file, ADMIN, 403, 'DENIED', /library\/base is mirrored from an upstream/);
    await refusedUpload(path.join(work, 'app.tar'), ADMIN, 403, 'DENIED', /ghcr\.io\/x is mirrored|mirrored from an upstream/, { query: '?name=ghcr.io/x' });
    // The upstream's image is still what a pull gets.
    const pulled = await pullToLayout(`docker://${a.host}/library/base:1`, path.join(work, 'pulled-base'), { creds: 'admin:admin-pw' });
    expect(pulled.blobs).toContain(configOf(img.base));
  });

  it('refuses a type a cross-site page could send (415), a garbage body (400 naming it), and uploads to a read-only store (405)', async () => {
    const file = path.join(work, 'app.tar');
    await refusedUpload(file, OPS, 415, 'UNSUPPORTED', /Content-Type: application\/x-tar/, { type: 'text/plain' });
    await refusedUpload(file, OPS, 415, 'UNSUPPORTED', /multipart\/form-data/, { type: 'multipart/form-data; boundary=x' });
    const junk = path.join(work, 'junk.tar');
    await writeFile(junk, Buffer.alloc(10_000, 7));
    await refusedUpload(junk, OPS, 400, 'UNSUPPORTED', /^the upload is not an image archive: not a tar/);
    const truncated = path.join(work, 'truncated.tar');
    await writeFile(truncated, (await readFile(file)).subarray(0, 200_000));
    await refusedUpload(truncated, OPS, 400, 'UNSUPPORTED', /^the upload is truncated or damaged in entry [0-9a-f]{64}\.tar/);

    const ro = await startAirlock(yml(['']).replace(`root: ${root}`, `root: ${root}\n  readOnly: true`));
    try {
      const before = await snapshot(root);
      const r = await upload(file, OPS, { to: ro });
      expect(r.status).toBe(405);
      expect(r.body.errors?.[0]?.code).toBe('UNSUPPORTED');
      expect(await snapshot(root)).toEqual(before);
    } finally {
      await ro.stop();
    }
  });
});

describe('hostile uploads', () => {
  it('refuses a blob entry that links to other content (symbolic or hard): nothing is stored under the borrowed digest', async () => {
    const evil = Buffer.from('not the victim layer');
    // A layer the store does not hold yet: the poison would be served for it later.
    const victim = sha256(Buffer.from('the real layer, elsewhere'));
    for (const type of ['symlink', 'link'] as const) {
      const file = await ociTar('team/poison:1', [{ digest: `sha256:${victim}`, size: evil.length }], [
        { name: `blobs/sha256/${sha256(evil)}`, body: evil },
        { name: `blobs/sha256/${victim}`, type, linkname: type === 'symlink' ? sha256(evil) : `blobs/sha256/${sha256(evil)}` },
      ]);
      await refusedUpload(file, OPS, 400, 'UNSUPPORTED', new RegExp(`entry blobs/sha256/${victim}: links to blobs/sha256/${sha256(evil)}, whose content as stored would hash to sha256:${sha256(evil)}, not to the name`));
      await expect(stat(blobFile(root, `sha256:${victim}`))).rejects.toThrow();
    }
    // The right bytes, but in a file that is gzipped on the way in (an uncompressed classic
    // layer): what would be stored under the name is not what the name says.
    const plain = Buffer.from('uncompressed layer bytes '.repeat(40));
    const named = sha256(plain);
    const gz = await ociTar('team/poison:2', [{ digest: `sha256:${named}`, size: plain.length }], [
      { name: 'x/layer.tar', body: plain },
      { name: `blobs/sha256/${named}`, type: 'symlink', linkname: '../../x/layer.tar' },
    ]);
    await refusedUpload(gz, OPS, 400, 'UNSUPPORTED', new RegExp(`entry blobs/sha256/${named}: links to x/layer.tar, whose content as stored would hash to sha256:[0-9a-f]{64}, not to the name`));
    await expect(stat(blobFile(root, `sha256:${named}`))).rejects.toThrow();
  });

  it("takes a blob the archive lacks only from the repository it loads into, and the refusal does not tell whether the store has it", async () => {
    // team/reuse comes to hold img.app's config; library/base's layer, pulled through, is in the
    // store too, but in no repository under team/.
    const src = path.join(work, 'reuse-src.tar');
    await skopeoCopy(img.app.source, `docker-archive:${src}:team/reuse:1`);
    expect((await upload(src, OPS)).status).toBe(201);
    await pullToLayout(`docker://${a.host}/library/base:1`, path.join(work, 'pulled-base-2'), { creds: 'admin:admin-pw' });
    const cfg = img.app.blobs.find((b) => b.digest === configOf(img.app))!;
    const layer = Buffer.from('a small layer of the uploader');
    const extra = [{ name: `blobs/sha256/${sha256(layer)}`, body: layer }];
    const desc = { digest: `sha256:${sha256(layer)}`, size: layer.length };
    const same = await ociTar('team/reuse:2', [desc], extra, cfg);
    const ok = await upload(same, OPS);
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    expect(await tagLink('team/reuse', '2')).toBe(ok.body.images![0]!.digest);

    const baseLayer = img.base.blobs.find((b) => b.digest !== configOf(img.base))!;
    await expect(stat(blobFile(root, baseLayer.digest))).resolves.toBeTruthy();
    const other = await ociTar('team/thief:1', [desc, { digest: baseLayer.digest, size: baseLayer.size }], extra, cfg);
    await refusedUpload(other, OPS, 400, 'UNSUPPORTED', /blob sha256:[0-9a-f]{64} of manifest sha256:[0-9a-f]{64} is not in the archive \(nor already in the repository it is loaded into\)$/);
    const absent = await ociTar('team/thief:1', [desc, { digest: `sha256:${sha256(Buffer.from('nowhere'))}`, size: baseLayer.size }], extra, cfg);
    const a1 = await upload(other, OPS);
    const a2 = await upload(absent, OPS);
    const strip = (m?: string) => m?.replace(/sha256:[0-9a-f]{64}/g, 'D');
    expect(strip(a1.body.errors?.[0]?.message)).toBe(strip(a2.body.errors?.[0]?.message));
    // Nor does any refusal that comes before the uploader's rights are known (here: no name).
    const unnamed = await upload(await ociTar('', [desc, { digest: baseLayer.digest, size: baseLayer.size }], extra, cfg), OPS);
    const unnamedAbsent = await upload(await ociTar('', [desc, { digest: `sha256:${sha256(Buffer.from('nowhere'))}`, size: baseLayer.size }], extra, cfg), OPS);
    expect(unnamed.body.errors?.[0]?.message).toMatch(/has no name/);
    expect(strip(unnamed.body.errors?.[0]?.message)).toBe(strip(unnamedAbsent.body.errors?.[0]?.message));
    await expect(stat(path.join(root, 'docker/registry/v2/repositories/team/thief'))).rejects.toThrow();
  });

  it('refuses a gzip bomb as it unpacks, and an entry larger than push.maxBlobSize, before staging it', async () => {
    const bomb = path.join(work, 'bomb.tar.gz');
    const pack = tar.pack();
    const done = pipeline(pack, createGzip({ level: 1 }), createWriteStream(bomb));
    const size = 400 * 2 ** 20;
    const entry = pack.entry({ name: 'blobs/sha256/' + '0'.repeat(64), size });
    const zeros = Buffer.alloc(2 ** 20);
    for (let i = 0; i < size / zeros.length; i++) if (!entry.write(zeros)) await once(entry, 'drain');
    entry.end(Buffer.alloc(0));
    pack.finalize();
    await done;
    expect((await stat(bomb)).size).toBeLessThan(2 * 2 ** 20);
    await refusedUpload(bomb, OPS, 400, 'UNSUPPORTED', /^the upload unpacks to more than \d+ bytes \(64x its size, or the store's limit\): refused$/, { type: 'application/gzip' });

    // The bomb inside a plain tar: a gzip layer whose diff_id would take unpacking 160 MiB.
    const mib = Buffer.alloc(2 ** 20);
    const diff = createHash('sha256');
    for (let i = 0; i < 160; i++) diff.update(mib);
    const layer = gzipSync(Buffer.alloc(160 * 2 ** 20), { level: 9 });
    const cfgBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${diff.digest('hex')}`] } }));
    const inner = path.join(work, 'inner-bomb.tar');
    const pk = tar.pack();
    const written = pipeline(pk, createWriteStream(inner));
    pk.entry({ name: 'manifest.json' }, JSON.stringify([{ Config: `${sha256(cfgBytes)}.json`, RepoTags: ['team/inner:1'], Layers: ['l1/layer.tar'] }]));
    pk.entry({ name: `${sha256(cfgBytes)}.json` }, cfgBytes);
    pk.entry({ name: 'l1/layer.tar' }, layer);
    pk.finalize();
    await written;
    await refusedUpload(inner, OPS, 400, 'UNSUPPORTED', new RegExp(`^entry l1/layer\\.tar: unpacks to more than ${64 * layer.length + 64 * 2 ** 20} bytes, an upload's bound for a layer of its size: refused$`));

    const big = Buffer.alloc(300_000, 1);
    const file = await ociTar('team/big:1', [{ digest: `sha256:${sha256(big)}`, size: big.length }], [{ name: `blobs/sha256/${sha256(big)}`, body: big }]);
    const bounded = await startAirlock(yml().replace('push:\n', 'push:\n  maxBlobSize: 200KB\n'));
    try {
      const before = await snapshot(root);
      const r = await upload(file, OPS, { to: bounded });
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.errors?.[0]?.message).toMatch(/^entry blobs\/sha256\/[0-9a-f]{64}: 300000 bytes, more than the 200000 this registry takes in one blob/);
      expect(await snapshot(root)).toEqual(before);
      // Under the bound, the same registry loads it.
      const small = await ociTar('team/small:1', [], []);
      expect((await upload(small, OPS, { to: bounded })).status).toBe(201);
      // An uncompressed classic layer is judged on its size as stored (gzipped): 300 kB of
      // one byte repeated is far under the bound, 300 kB of random bytes is not.
      for (const [body, ok] of [[Buffer.alloc(300_000, 7), true], [randomBytes(300_000), false]] as const) {
        const cfgBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(body)}`] } }));
        const classic = path.join(work, `classic-${ok}.tar`);
        const pack = tar.pack();
        const done = pipeline(pack, createWriteStream(classic));
        pack.entry({ name: 'manifest.json' }, JSON.stringify([{ Config: `${sha256(cfgBytes)}.json`, RepoTags: [`team/classic:${ok}`], Layers: ['l1/layer.tar'] }]));
        pack.entry({ name: `${sha256(cfgBytes)}.json` }, cfgBytes);
        pack.entry({ name: 'l1/layer.tar' }, body);
        pack.finalize();
        await done;
        const r2 = await upload(classic, OPS, { to: bounded });
        if (ok) expect(r2.status, JSON.stringify(r2.body)).toBe(201);
        else expect(r2.body.errors?.[0]?.message).toMatch(/^entry l1\/layer\.tar: 3\d{5} bytes, more than the 200000 this registry takes in one blob/);
      }
    } finally {
      await bounded.stop();
    }
  }, 60_000);
});

describe('an upload larger than the store', () => {
  it('is refused with 413 as it spools, announced or not, and nothing stays on disk', async () => {
    const limited = await startAirlock(yml().replace(`root: ${root}`, `root: ${root}\n  maxSize: 1MB`));
    try {
      const big = path.join(work, 'big-upload.tar');
      await writeFile(big, randomBytes(2_000_000));
      const before = await snapshot(root);
      const announced = await upload(big, OPS, { to: limited });
      expect(announced.status).toBe(413);
      expect(announced.body.errors?.[0]).toEqual({ code: 'SIZE_INVALID', message: "the upload is larger than 1000000 bytes, the store's limit (storage.maxSize)" });
      // Chunked, without a length: refused once the spool passes the limit.
      const r = await request(`${limited.url}/ui/api/archive`, { method: 'POST', headers: { 'content-type': 'application/x-tar', authorization: OPS }, body: Readable.from((async function* () {
        for (let i = 0; i < 40; i++) yield randomBytes(64 * 1024);
      })()) });
      expect(r.statusCode).toBe(413);
      await r.body.dump();
      expect(await snapshot(root)).toEqual(before);
      expect((await run('find', [path.join(root, '.airlock/tmp'), '-type', 'f'])).stdout).toBe('');
    } finally {
      await limited.stop();
    }
  });
});

describe('archive download (GET /ui/api/archive)', () => {
  it('streams a docker-archive that skopeo reads, byte for byte what `airlock save` writes', async () => {
    const r = await download('image=team/app:1.0', VIEWER);
    expect(r.status).toBe(200);
    expect(r.type).toBe('application/x-tar');
    const file = path.join(work, 'down.tar');
    await writeFile(file, r.body);
    const back = await pullToLayout(`docker-archive:${file}`, path.join(work, 'down-layout'));
    expect(back.blobs).toContain(configOf(img.app));
    const saved = path.join(work, 'saved.tar');
    const cli = await runAirlock(['save', '--out', saved, '--config', cfg, 'team/app:1.0'], 60_000);
    expect(cli.code, cli.stderr).toBe(0);
    expect(sha256(r.body)).toBe(sha256(await readFile(saved)));
  });

  it('streams an OCI archive of a mirrored image pulled before, several images in one, for skopeo oci-archive:', async () => {
    await pullToLayout(`docker://${a.host}/library/base:1`, path.join(work, 'warm-base'), { creds: 'ops:ops-pw' });
    const r = await download('image=team/app:1.0&image=base:1&format=oci', OPS);
    expect(r.status).toBe(200);
    const file = path.join(work, 'down-oci.tar');
    await writeFile(file, r.body);
    const index = JSON.parse((await run('tar', ['-xOf', file, 'index.json'])).stdout) as { manifests: Array<{ annotations: Record<string, string> }> };
    expect(index.manifests.map((m) => m.annotations['io.containerd.image.name'])).toEqual(['docker.io/team/app:1.0', 'docker.io/library/base:1']);
    const back = await pullToLayout(`oci-archive:${file}:1`, path.join(work, 'down-oci-layout'));
    expect(back.blobs).toContain(configOf(img.base));
  });

  it('refuses an image the user may not pull (403), no login (401), an image the store lacks (404), bad requests (400)', async () => {
    const forbidden = await download('image=team/app-copy:2', VIEWER);
    expect(forbidden.status).toBe(403);
    expect(JSON.parse(forbidden.body.toString()).errors[0].code).toBe('DENIED');
    // One forbidden image among allowed ones refuses the whole archive, before any byte.
    expect((await download('image=team/app:1.0&image=team/app-copy:2', VIEWER)).status).toBe(403);
    expect((await download('image=team/app:1.0')).status).toBe(401);
    const missing = await download('image=team/app:nope', OPS);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body.toString()).errors[0]).toMatchObject({ code: 'MANIFEST_UNKNOWN', message: expect.stringMatching(/not in the store/) });
    expect((await download('format=docker', OPS)).status).toBe(400);
    expect((await download('image=team/app:1.0&format=zip', OPS)).status).toBe(400);
    expect((await download('image=Bad//Name', OPS)).status).toBe(400);
  });

  it('needs a platform for a multi-arch image in docker format, and keeps the whole index in OCI format', async () => {
    const file = path.join(work, 'multi');
    await skopeoCopy(img.multi.source, `oci:${file}:team/multi:1`, { all: true });
    const r = await upload(await tarOf(file), OPS, { query: '?name=team/multi:1' });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const arm = await download('image=team/multi:1&platform=linux/arm64/v8', OPS);
    expect(arm.status).toBe(200);
    const none = await download('image=team/multi:1&platform=windows/amd64', OPS);
    expect(none.status).toBe(400);
    expect(JSON.parse(none.body.toString()).errors[0].message).toMatch(/no windows\/amd64 manifest/);
    const whole = await download('image=team/multi:1&format=oci', OPS);
    const index = JSON.parse((await run('tar', ['-xOf', await written(whole.body), 'index.json'])).stdout) as { manifests: Array<{ digest: string }> };
    expect(index.manifests[0]!.digest).toBe(r.body.images![0]!.digest);
  });
});

describe('a download that cannot finish', () => {
  it('cuts the connection at a corrupt stored blob instead of ending a valid-looking archive, and logs why', async () => {
    const g = await generateImage(path.join(work, 'g-rot'), { layers: 1, layerSize: 2_000_000, format: 'oci' });
    const file = path.join(work, 'rot.tar');
    await skopeoCopy(g.source, `oci-archive:${file}:team/rot:1`);
    expect((await upload(file, OPS, { query: '?name=team/rot:1' })).status).toBe(201);
    const layer = (JSON.parse(g.manifestBytes.toString()) as { layers: Array<{ digest: string }> }).layers[0]!.digest;
    const data = blobFile(root, layer);
    const bytes = await readFile(data);
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    await writeFile(data, bytes);
    const r = await request(`${a.url}/ui/api/archive?image=team/rot:1&format=oci`, { headers: { authorization: OPS } });
    expect(r.statusCode).toBe(200);
    await expect(r.body.arrayBuffer()).rejects.toThrow();
    await expect.poll(() => a.logs.some((l) => l.msg === 'image archive download failed' && String(l.err).includes('is corrupt'))).toBe(true);
  });
});

async function tarOf(dir: string): Promise<string> {
  const out = `${dir}.tar`;
  await run('tar', ['-C', dir, '-cf', out, '.']);
  return out;
}

/**
 * An OCI layout tar written entry by entry: one image named `label`, whose manifest lists
 * `layers` (not necessarily in the archive), plus `extra` entries. The config is generated
 * unless one is given (then it is left out of the archive).
 */
async function ociTar(label: string, layers: Array<{ digest: string; size: number }>, extra: TarEntry[], config?: { digest: string; size: number }): Promise<string> {
  const cfgBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const cfg = config ?? { digest: `sha256:${sha256(cfgBytes)}`, size: cfgBytes.length };
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg }, layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l })) }));
  const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256(manifest)}`, size: manifest.length, ...(label ? { annotations: { 'io.containerd.image.name': label } } : {}) }] };
  const entries: TarEntry[] = [
    { name: 'oci-layout', body: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { name: 'index.json', body: Buffer.from(JSON.stringify(index)) },
    { name: `blobs/sha256/${sha256(manifest)}`, body: manifest },
    ...(config ? [] : [{ name: `blobs/sha256/${sha256(cfgBytes)}`, body: cfgBytes }]),
    ...extra,
  ];
  const file = path.join(work, `oci-${n++}.tar`);
  const pack = tar.pack();
  const done = pipeline(pack, createWriteStream(file));
  for (const e of entries) {
    if (e.type) pack.entry({ name: e.name, type: e.type, linkname: e.linkname });
    else pack.entry({ name: e.name }, e.body ?? Buffer.alloc(0));
  }
  pack.finalize();
  await done;
  return file;
}
interface TarEntry {
  name: string;
  body?: Buffer;
  type?: 'symlink' | 'link';
  linkname?: string;
}

let n = 0;
async function written(body: Buffer): Promise<string> {
  const f = path.join(work, `body-${n++}.tar`);
  await writeFile(f, body);
  return f;
}
