import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Digest, digestBytes } from '../../../src/oci/digest.js';
import { FilesystemDriver } from '../../../src/storage/filesystem-driver.js';
import { Store } from '../../../src/storage/store.js';
import { TEST_STORE_OPTIONS, tinyManifest } from '../../helpers/store-files.js';

const manifest = tinyManifest;

let root: string;
let store: Store;
let driver: FilesystemDriver;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'airlock-store-'));
  driver = new FilesystemDriver(root);
  store = new Store(driver, TEST_STORE_OPTIONS);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('Store layout', () => {
  it('writes a manifest, its revision and tag links exactly where Distribution does, without newlines', async () => {
    const bytes = manifest(1);
    const m = await store.links.putManifest('library/alpine', bytes, '3.20');
    const d = digestBytes(bytes);
    expect(m.digest.equals(d)).toBe(true);
    const v2 = path.join(root, 'docker/registry/v2');
    expect(await readFile(path.join(v2, 'blobs/sha256', d.hex.slice(0, 2), d.hex, 'data'))).toEqual(bytes);
    const repo = path.join(v2, 'repositories/library/alpine/_manifests');
    expect(await readFile(path.join(repo, 'revisions/sha256', d.hex, 'link'), 'utf8')).toBe(d.toString());
    expect(await readFile(path.join(repo, 'tags/3.20/current/link'), 'utf8')).toBe(d.toString());
    expect(await readFile(path.join(repo, 'tags/3.20/index/sha256', d.hex, 'link'), 'utf8')).toBe(d.toString());
    // Nothing left behind in the temp area.
    expect(await readdir(driver.tmpDir)).toEqual([]);
  });

  it('reads manifests by tag and digest, with their media type, and only in their repository', async () => {
    const bytes = manifest(2);
    const { digest } = await store.links.putManifest('a', bytes, 'v1');
    const byTag = await store.links.getManifest('a', { kind: 'tag', tag: 'v1' });
    expect(byTag?.bytes).toEqual(bytes);
    expect(byTag?.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect((await store.links.getManifest('a', { kind: 'digest', digest }))?.digest.equals(digest)).toBe(true);
    expect(await store.links.getManifest('b', { kind: 'digest', digest })).toBeUndefined();
    expect(await store.links.getManifest('a', { kind: 'tag', tag: 'v2' })).toBeUndefined();
  });

  it('refuses a manifest blob whose bytes do not match its digest', async () => {
    const bytes = manifest(3);
    const { digest } = await store.links.putManifest('a', bytes, 'v1');
    const fresh = new Store(driver, TEST_STORE_OPTIONS);
    const file = path.join(root, 'docker/registry/v2/blobs/sha256', digest.hex.slice(0, 2), digest.hex, 'data');
    const tampered = Buffer.from(bytes);
    tampered[10] = tampered[10]! ^ 1;
    await writeFile(file, tampered);
    await expect(fresh.links.getManifest('a', { kind: 'digest', digest })).rejects.toThrow(/hashes to/);
  });

  it('streams blobs with ranges and links them per repository', async () => {
    const data = Buffer.from('0123456789');
    const d = await store.blobs.put(data);
    await store.links.linkBlob('a', d);
    expect(await store.links.isBlobLinked('a', d)).toBe(true);
    expect(await store.links.isBlobLinked('b', d)).toBe(false);
    expect((await store.blobs.stat(d))?.size).toBe(10);
    const chunks: Buffer[] = [];
    for await (const c of (await store.blobs.open(d, { start: 2, end: 5 }))!) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('2345');
    expect(await store.blobs.open(Digest.parse(`sha256:${'f'.repeat(64)}`))).toBeUndefined();
  });

  it('peekTag reads the link as it is on disk now; resolveTag remembers it for a second', async () => {
    const one = await store.links.putManifest('library/x', manifest(1), 'v1');
    const two = await store.links.putManifest('library/x', manifest(2));
    expect((await store.links.resolveTag('library/x', 'v1'))?.equals(one.digest)).toBe(true);
    // Another process (registry:2 on the same directory) moves the tag.
    await writeFile(path.join(root, 'docker/registry/v2/repositories/library/x/_manifests/tags/v1/current/link'), two.digest.toString());
    expect((await store.links.peekTag('library/x', 'v1'))?.equals(two.digest)).toBe(true);
    // The walk did not put the link in the cache, nor take the remembered one out.
    expect((await store.links.resolveTag('library/x', 'v1'))?.equals(one.digest)).toBe(true);
    expect(await store.links.peekTag('library/x', 'nope')).toBeUndefined();
  });

  it('lists tags sorted, skipping a tag without current/link', async () => {
    for (const t of ['b', 'a', '10', '9', 'A_']) await store.links.putManifest('r', manifest(4), t);
    await mkdir(path.join(root, 'docker/registry/v2/repositories/r/_manifests/tags/half/index'), { recursive: true });
    expect(await store.links.listTags('r')).toEqual(['10', '9', 'A_', 'a', 'b']);
    expect(await store.links.listTags('nope')).toBeUndefined();
  });

  it('walks repositories depth-first in lexical order of components', async () => {
    for (const r of ['a-b', 'a/b', 'a.b', 'a0', 'a/c', 'a', 'z/y/x']) await store.links.putManifest(r, manifest(5), 't');
    const names: string[] = [];
    for await (const r of store.links.repositories()) names.push(r);
    expect(names).toEqual(['a', 'a/b', 'a/c', 'a-b', 'a.b', 'a0', 'z/y/x']);
  });
});

describe('Store roles', () => {
  const v2 = () => path.join(root, 'docker/registry/v2');

  it('commits an upload into blobs/ and links it only then; a second upload of the same blob just goes away', async () => {
    const data = Buffer.from('pushed layer bytes');
    const d = digestBytes(data);
    await store.uploads.create('p/app', 'u1');
    expect(await store.uploads.size('p/app', 'u1')).toBe(0);
    async function* body() {
      yield data.subarray(0, 5);
      yield data.subarray(5);
    }
    expect(await store.uploads.append('p/app', 'u1', body(), 0)).toBe(data.length);
    expect(await store.links.isBlobLinked('p/app', d)).toBe(false);
    await store.uploads.commit('p/app', 'u1', d);
    expect(await readFile(path.join(v2(), 'blobs/sha256', d.hex.slice(0, 2), d.hex, 'data'))).toEqual(data);
    expect(await readFile(path.join(v2(), 'repositories/p/app/_layers/sha256', d.hex, 'link'), 'utf8')).toBe(d.toString());
    expect(await store.uploads.size('p/app', 'u1')).toBeUndefined();

    await store.uploads.create('p/other', 'u2');
    await store.uploads.append('p/other', 'u2', body());
    await store.uploads.commit('p/other', 'u2', d);
    expect(await store.links.hasLayer('p/other', d)).toBe(true);
    expect(await store.uploads.list('p/other')).toEqual([]);
    expect((await store.blobs.stat(d))?.size).toBe(data.length);
  });

  it('sweeps only upload sessions older than the cutoff that nobody holds', async () => {
    for (const id of ['old', 'held', 'new']) await store.uploads.create('s', id);
    const times = new Map((await store.uploads.list('s')).map((u) => [u.id, u.modTime.getTime()]));
    expect([...times.keys()].sort()).toEqual(['held', 'new', 'old']);
    const cutoff = Math.max(times.get('old')!, times.get('held')!);
    const gone = await store.uploads.sweep('s', cutoff, (id) => id === 'held' || id === 'new');
    expect(gone).toEqual(['old']);
    expect((await store.uploads.list('s')).map((u) => u.id)).toEqual(['held', 'new']);
    expect(await store.uploads.sweep('s', 0)).toEqual([]);
  });

  it('keeps pins and local marks outside the layout', async () => {
    const d = digestBytes(Buffer.from('m'));
    await store.pins.pin('a/b', d);
    await store.pins.pin('a/b', d);
    expect((await store.pins.list()).map((p) => `${p.name}@${p.digest.toString()}`)).toEqual([`a/b@${d.toString()}`]);
    expect(await store.local.has('a/b')).toBe(false);
    await store.local.mark('a/b');
    expect(await store.local.has('a/b')).toBe(true);
    expect(await new Store(driver, TEST_STORE_OPTIONS).local.has('a/b')).toBe(true);
    expect(await readdir(path.join(root, '.airlock/local/a/b'))).toEqual(['_local']);
    expect(await readdir(root)).toEqual(['.airlock']);
  });

  it('sweeps dead fill leases and old tag markers, never a live lease', async () => {
    const live = JSON.stringify({ replica: 'r1', url: 'http://r1', expires: Date.now() + 60_000 });
    const dead = JSON.stringify({ replica: 'r2', url: 'http://r2', expires: Date.now() - 1 });
    expect(await store.fleet.create('leases/sha256-aa', live)).toBe(true);
    expect(await store.fleet.create('leases/sha256-aa', dead)).toBe(false);
    await store.fleet.write('leases/sha256-bb', dead);
    await store.fleet.write('tags/x', '{}');
    expect(await store.fleet.sweepUnfinished(new Date(Date.now() + 60_000))).toBe(2);
    expect(await store.fleet.read('leases/sha256-aa')).toBe(live);
    expect(await store.fleet.read('leases/sha256-bb')).toBeUndefined();
    expect(await store.fleet.read('tags/x')).toBeUndefined();
    await store.fleet.delete('leases/sha256-aa');
    expect(await readdir(path.join(root, '.airlock/fleet/leases'))).toEqual([]);
  });

  it('quarantines and deletes blobs, and a read after either finds nothing', async () => {
    const bytes = manifest(6);
    const { digest } = await store.links.putManifest('q', bytes, 't');
    expect((await store.blobs.readManifest(digest))?.bytes).toEqual(bytes);
    const to = await store.blobs.quarantine(digest);
    expect(await readFile(path.join(root, to, 'data'))).toEqual(bytes);
    expect(await store.blobs.readManifest(digest)).toBeUndefined();
    const other = await store.blobs.put(Buffer.from('config'));
    const all: string[] = [];
    for await (const d of store.blobs.all()) all.push(d.toString());
    expect(all).toEqual([other.toString()]);
    await store.blobs.delete(other);
    expect(await store.blobs.stat(other)).toBeUndefined();
    expect(await readdir(path.join(v2(), 'blobs/sha256', other.hex.slice(0, 2)))).toEqual([]);
  });

  it('recalls blob sizes for serving, but never for stat(), and forgets blobs removed behind its back', async () => {
    const d = await store.blobs.put(Buffer.from('hello'));
    let stats = 0;
    const stat = driver.stat.bind(driver);
    driver.stat = (logical) => {
      stats++;
      return stat(logical);
    };
    expect(await store.blobs.servedSize(d)).toEqual({ digest: d, size: 5 });
    expect(stats).toBe(0);
    // Another process (gc, a replica's eviction) removes the bytes: what writes asks the store.
    await rm(path.join(v2(), 'blobs/sha256', d.hex.slice(0, 2), d.hex), { recursive: true });
    expect(await store.blobs.stat(d)).toBeUndefined();
    expect(stats).toBe(1);
    // Serving recalls the size until its read finds nothing, and then asks the store again.
    expect((await store.blobs.servedSize(d))?.size).toBe(5);
    expect(await store.blobs.open(d)).toBeUndefined();
    expect(await store.blobs.servedSize(d)).toBeUndefined();
    expect(stats).toBe(2);
    // A stat that finds it is recalled; a delete here forgets it.
    const e = await store.blobs.put(Buffer.from('again'));
    const fresh = new Store(driver, TEST_STORE_OPTIONS);
    expect((await fresh.blobs.servedSize(e))?.size).toBe(5);
    expect((await fresh.blobs.servedSize(e))?.size).toBe(5);
    expect(stats).toBe(4);
    await fresh.blobs.delete(e);
    expect(await fresh.blobs.servedSize(e)).toBeUndefined();
    expect(stats).toBe(5);
    // So does a quarantine.
    const q = await fresh.blobs.put(Buffer.from('suspect'));
    expect((await fresh.blobs.servedSize(q))?.size).toBe(7);
    await fresh.blobs.quarantine(q);
    expect(await fresh.blobs.servedSize(q)).toBeUndefined();
  });
});
