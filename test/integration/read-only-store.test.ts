/**
 * Serving from read-only media (issue 20): a store filled by a normal airlock (a pull through a
 * real Distribution upstream with token auth, and a push) is then served with storage.readOnly,
 * and from a real read-only bind mount (EROFS, found at start). skopeo pulls what it holds; pushes
 * and deletes get 405 UNSUPPORTED naming the read-only store; misses are not fetched (the upstream
 * sees no request); the jobs that write refuse with one line and exit 2; and the store's whole
 * tree (every path, size, mtime and content) is the same afterwards, with no .airlock/tmp.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAirlock } from '../helpers/airlock.js';
import { AIRLOCK_BIN, NODE_FLAGS, runAirlock, waitHealthy } from '../helpers/cli.js';
import { generateImage, type GeneratedImage } from '../helpers/images.js';
import { freePort } from '../helpers/ports.js';
import { pullToLayout, skopeoCopy } from '../helpers/skopeo.js';
import { mirrorUpstreams, startTestUpstream, type TestUpstream } from '../helpers/upstream.js';

const run = promisify(execFile);
let work: string;
/** The store a normal airlock filled; each test serves a copy of it (cp -a keeps the mtimes). */
let filled: string;
let up: TestUpstream;
const img: Record<string, GeneratedImage> = {};
let n = 0;

/**
 * Every path under `root` (directories too) with its type, size, mtime and, for files, the
 * sha256 of the bytes: equal before and after means nothing was created, removed or written.
 */
async function tree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const s = await lstat(p);
      const rel = path.relative(root, p);
      if (e.isDirectory()) {
        out[`${rel}/`] = `dir mtime=${s.mtimeMs}`;
        await walk(p);
      } else {
        out[rel] = `file size=${s.size} mtime=${s.mtimeMs} sha256=${createHash('sha256').update(await readFile(p)).digest('hex')}`;
      }
    }
  };
  await walk(root);
  return out;
}

/** A copy of the filled store to serve (the filled one stays as it was for the next test). */
async function copyOfStore(): Promise<string> {
  const dest = path.join(work, `store-${n++}`);
  await cp(filled, dest, { recursive: true, preserveTimestamps: true });
  return dest;
}

async function configFile(lines: string[]): Promise<string> {
  const f = path.join(work, `mirror-${n++}.yml`);
  await writeFile(f, lines.join('\n') + '\n');
  return f;
}

const storeLines = (root: string, readOnly: boolean) => ['storage:', `  root: ${root}`, ...(readOnly ? ['  readOnly: true'] : []), '  delete:', '    enabled: true'];

/** Can this machine give a process a read-only bind mount of its own (a mount namespace, as root)? */
async function readOnlyMounts(): Promise<{ ok: true } | { ok: false; reason: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-ro-probe-'));
  try {
    await run('unshare', ['-m', 'sh', '-c', `mount --bind ${dir} ${dir} && mount -o remount,bind,ro ${dir} && ! touch ${dir}/x 2>/dev/null`], { timeout: 10_000 });
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: `unshare -m with a read-only bind mount is not available here (needs root or user namespaces): ${((e as { stderr?: string }).stderr ?? (e as Error).message).trim()}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `sh -c` text that makes `dir` a read-only bind mount in a new mount namespace, then runs airlock. */
function onReadOnlyMount(dir: string, args: string[]): string[] {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return ['-m', 'sh', '-c', `mount --bind ${q(dir)} ${q(dir)} && mount -o remount,bind,ro ${q(dir)} && exec ${[process.execPath, ...NODE_FLAGS, AIRLOCK_BIN, ...args].map(q).join(' ')}`];
}

async function json(url: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await request(url, { method: (init.method ?? 'GET') as 'GET', body: init.body, headers: init.headers });
  const text = await r.body.text();
  return { status: r.statusCode, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** The refusal of a write as the API answers it: 405, one UNSUPPORTED error naming the read-only store. */
function expectRefused(r: { status: number; body: Record<string, unknown> }, root: string, why = 'storage.readOnly: true'): void {
  expect(r.status).toBe(405);
  const errors = r.body.errors as Array<{ code: string; message: string }>;
  expect(errors).toHaveLength(1);
  expect(errors[0]!.code).toBe('UNSUPPORTED');
  expect(errors[0]!.message).toContain(`the store at ${root} is read-only (${why})`);
}

const probe = await readOnlyMounts();

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-ro-'));
  up = await startTestUpstream();
  img.alpine = await generateImage(path.join(work, 'g-alpine'), { layers: 2, layerSize: 200_000, format: 'oci' });
  img.app = await generateImage(path.join(work, 'g-app'), { layers: 2, layerSize: 150_000, format: 'docker' });
  img.other = await generateImage(path.join(work, 'g-other'), { layers: 1, layerSize: 50_000, format: 'oci' });
  await up.push(img.alpine, 'library/alpine', '3.20');
  // On the upstream, never pulled through: a miss for the read-only store.
  await up.push(img.other, 'library/alpine', 'edge');
  // Filled by a normal airlock: alpine pulled through the upstream, local/app pushed.
  filled = path.join(work, 'filled');
  const w = await startAirlock([...storeLines(filled, false), 'log:\n  level: warn', mirrorUpstreams(up), 'push:\n  repositories: ["local/**"]'].join('\n'));
  try {
    const pulled = await pullToLayout(`docker://${w.host}/library/alpine:3.20`, path.join(work, 'fill-pull'));
    expect(pulled.manifestDigest).toBe(img.alpine!.manifestDigest);
    await skopeoCopy(img.app!.source, `docker://${w.host}/local/app:1`);
  } finally {
    await w.stop();
  }
  // What a disc burnt from that store holds: no temp area of a process long gone.
  await rm(path.join(filled, '.airlock/tmp'), { recursive: true, force: true });
});

afterAll(async () => {
  await up?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('storage.readOnly: true', () => {
  it('serves pulls from the store, refuses pushes and deletes with 405 UNSUPPORTED, fetches no miss, and leaves every path, size and mtime as it was', async () => {
    const root = await copyOfStore();
    const before = await tree(root);
    expect(Object.keys(before).some((p) => p.startsWith('.airlock/tmp'))).toBe(false);
    const a = await startAirlock(
      [...storeLines(root, true), '  maxSize: 1GiB', 'log:\n  level: info', mirrorUpstreams(up), 'cache:\n  tagTTL: 0s', 'push:\n  repositories: ["local/**"]'].join('\n'),
    );
    up.proxy.reset();
    try {
      // One warning at start, saying so and why.
      const warned = a.logs.filter((l) => l.level === 'warn' && String(l.msg).includes('read-only'));
      expect(warned).toHaveLength(1);
      expect(warned[0]).toMatchObject({ root, reason: 'storage.readOnly: true' });
      expect(String(warned[0]!.msg)).toContain('serving the store read-only (storage.readOnly: true)');

      // Pulls: the mirrored image (its tag not revalidated: nothing new could be stored) and the pushed one.
      const mirrored = await pullToLayout(`docker://${a.host}/library/alpine:3.20`, path.join(work, `pull-${n++}`));
      expect(mirrored.manifestDigest).toBe(img.alpine!.manifestDigest);
      expect(mirrored.blobs.sort()).toEqual(expect.arrayContaining(img.alpine!.blobs.map((b) => b.digest)));
      const local = await pullToLayout(`docker://${a.host}/local/app:1`, path.join(work, `pull-${n++}`));
      expect(local.manifestDigest).toBe(img.app!.manifestDigest);

      // A miss is answered as a plain registry would, from the store alone: the upstream is not asked.
      const miss = await json(`${a.url}/v2/library/alpine/manifests/edge`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      expect(miss.status).toBe(404);
      expect((miss.body.errors as Array<{ code: string }>)[0]!.code).toBe('MANIFEST_UNKNOWN');
      const blobMiss = await json(`${a.url}/v2/library/alpine/blobs/${img.other!.blobs[0]!.digest}`);
      expect(blobMiss.status).toBe(404);
      await expect(pullToLayout(`docker://${a.host}/library/alpine:edge`, path.join(work, `pull-${n++}`))).rejects.toThrow(/manifest unknown/i);
      expect(up.proxy.records).toEqual([]);

      // skopeo push: refused, with the registry's message.
      await expect(skopeoCopy(img.other!.source, `docker://${a.host}/local/new:1`)).rejects.toThrow(/read-only/);
      // Every write over the API: 405 UNSUPPORTED naming the store and storage.readOnly.
      expectRefused(await json(`${a.url}/v2/local/new/blobs/uploads/`, { method: 'POST' }), root);
      expectRefused(await json(`${a.url}/v2/local/new/blobs/uploads/?digest=${img.other!.blobs[0]!.digest}`, { method: 'POST', body: 'x', headers: { 'content-type': 'application/octet-stream' } }), root);
      expectRefused(await json(`${a.url}/v2/local/app/manifests/2`, { method: 'PUT', body: img.app!.manifestBytes.toString(), headers: { 'content-type': img.app!.mediaType } }), root);
      expectRefused(await json(`${a.url}/v2/local/app/manifests/${img.app!.manifestDigest}`, { method: 'DELETE' }), root);
      expectRefused(await json(`${a.url}/v2/local/app/manifests/1`, { method: 'DELETE' }), root);
      expectRefused(await json(`${a.url}/v2/library/alpine/blobs/${img.alpine!.blobs[0]!.digest}`, { method: 'DELETE' }), root);
      // A cross-repository mount would only write a link: refused as well.
      expectRefused(await json(`${a.url}/v2/local/new/blobs/uploads/?mount=${img.app!.blobs[0]!.digest}&from=local/app`, { method: 'POST' }), root);
      // What was refused is not half there: the pulls still see the same content.
      expect((await json(`${a.url}/v2/local/app/tags/list`)).body).toEqual({ name: 'local/app', tags: ['1'] });

      // Readiness and metrics say so.
      const ready = await json(`${a.url}/readyz`);
      expect(ready).toMatchObject({ status: 200, body: { ready: true, store: 'read-only' } });
      const metrics = await (await request(`${a.url}/metrics`)).body.text();
      expect(metrics).toMatch(/^airlock_store_read_only 1$/m);
      // The console counts the pulls (kept in memory, never written) once its index has the name.
      let listed: unknown;
      for (let i = 0; i < 50 && listed === undefined; i++) {
        listed = ((await json(`${a.url}/ui/api/repositories?q=local/app`)).body.items as unknown[])[0];
        if (listed === undefined) await new Promise((r) => setTimeout(r, 100));
      }
      expect(listed).toMatchObject({ name: 'local/app', pulls: 1, lastPulled: expect.any(Number) });
    } finally {
      await a.stop();
    }
    // Nothing created (no .airlock/tmp, no access times), written, touched or removed.
    expect(await tree(root)).toEqual(before);
  });

  it('a writable store reports airlock_store_read_only 0 and is ready as writable', async () => {
    const root = await copyOfStore();
    const a = await startAirlock([...storeLines(root, false), 'log:\n  level: warn'].join('\n'));
    try {
      expect(await (await request(`${a.url}/metrics`)).body.text()).toMatch(/^airlock_store_read_only 0$/m);
      expect(await json(`${a.url}/readyz`)).toMatchObject({ status: 200, body: { ready: true, store: 'writable' } });
      expect(a.logs.filter((l) => String(l.msg).includes('read-only'))).toEqual([]);
    } finally {
      await a.stop();
    }
  });
});

describe('the jobs on a read-only store', () => {
  /** One line on stderr, nothing on stdout, exit 2. */
  const expectOneLine = (r: { code: number; stdout: string; stderr: string }, root: string, what: RegExp) => {
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^airlock: the store at ${root} is read-only \\(storage\\.readOnly: true\\): `));
    expect(lines[0]).toMatch(what);
  };

  it('gc, import, prefetch and verify --repair refuse with one line and exit 2; du, verify and freeze work; the store is unchanged', async () => {
    const root = await copyOfStore();
    const before = await tree(root);
    const cfg = await configFile([...storeLines(root, true), 'log:\n  level: info', mirrorUpstreams(up), 'push:\n  repositories: ["local/**"]']);
    const cli = (args: string[]) => runAirlock(args, 60_000);

    expectOneLine(await cli(['gc', '--config', cfg]), root, /gc would delete from it/);
    expectOneLine(await cli(['gc', '--config', cfg, '--delete-untagged']), root, /gc/);
    expectOneLine(await cli(['verify', '--repair', '--config', cfg]), root, /verify --repair/);
    expectOneLine(await cli(['prefetch', '--config', cfg, 'alpine:edge']), root, /prefetch would store images in it/);
    expect(up.proxy.records.filter((r) => r.path.includes('edge'))).toEqual([]);

    // The reading commands work as on any store.
    const du = await cli(['du', '--config', cfg]);
    expect(du.code, du.stderr).toBe(0);
    expect(du.stdout).toContain('library/alpine');
    const verify = await cli(['verify', '--config', cfg]);
    expect(verify.code, verify.stderr).toBe(0);
    const bundle = path.join(work, `bundle-${n++}.tar`);
    const freeze = await cli(['freeze', '--config', cfg, '--out', bundle]);
    expect(freeze.code, freeze.stderr).toBe(0);

    // A real bundle, refused by another read-only store before a byte of it is read.
    const empty = path.join(work, `empty-${n++}`);
    await mkdir(empty);
    const emptyCfg = await configFile([...storeLines(empty, true), 'log:\n  level: warn']);
    expectOneLine(await cli(['import', '--config', emptyCfg, bundle]), empty, /import would write the bundle into it/);
    expect(await readdir(empty)).toEqual([]);

    expect(await tree(root)).toEqual(before);
  });
});

describe.skipIf(!probe.ok)(`a real read-only mount (EROFS)${probe.ok ? '' : ` — skipped: ${probe.reason}`}`, () => {
  it('airlock serve finds it read-only at start (one warning, why), serves a pull and refuses a push; gc exits 2; the store is unchanged', async () => {
    const root = await copyOfStore();
    const before = await tree(root);
    const port = await freePort();
    const cfg = await configFile([...storeLines(root, false), `listen: 127.0.0.1:${port}`, 'log:\n  level: info']);
    const child = spawn('unshare', onReadOnlyMount(root, ['serve', '--config', cfg]), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitHealthy(url, { out: () => out });
      const why = 'storage.root is on a read-only filesystem (EROFS)';
      const logs = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      const warned = logs.filter((l) => l.level === 'warn');
      expect(warned).toHaveLength(1);
      expect(warned[0]).toMatchObject({ root, reason: why });
      expect(logs.find((l) => l.msg === 'airlock serving')).toMatchObject({ readOnly: true });

      const pulled = await pullToLayout(`docker://127.0.0.1:${port}/library/alpine:3.20`, path.join(work, `pull-${n++}`));
      expect(pulled.manifestDigest).toBe(img.alpine!.manifestDigest);
      await expect(skopeoCopy(img.other!.source, `docker://127.0.0.1:${port}/local/new:1`)).rejects.toThrow(/read-only/);
      expectRefused(await json(`${url}/v2/local/new/blobs/uploads/`, { method: 'POST' }), root, why);
      expect(await json(`${url}/readyz`)).toMatchObject({ status: 200, body: { ready: true, store: 'read-only' } });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(out).not.toMatch(/"level":"(error|fatal)"/);

    // A job on the same mount: one line, exit 2, naming what the start-up check found.
    const gcCfg = await configFile([...storeLines(root, false), 'log:\n  level: info']);
    const gc = await run('unshare', onReadOnlyMount(root, ['gc', '--config', gcCfg])).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code?: number; stderr?: string }) => ({ code: e.code ?? -1, stderr: e.stderr ?? '' }),
    );
    expect(gc.code).toBe(2);
    expect(gc.stderr).toBe(`airlock: the store at ${root} is read-only (storage.root is on a read-only filesystem (EROFS)): airlock gc would delete from it; run it where the store is writable\n`);

    expect(await tree(root)).toEqual(before);
  });
});
