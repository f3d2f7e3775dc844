import { mkdtemp, readFile, readdir, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Digest, digestBytes } from '../../../src/oci/digest.js';
import { FilesystemDriver } from '../../../src/storage/filesystem-driver.js';
import { RegistryStore } from '../../../src/storage/registry-store.js';

const manifest = (n: number) =>
  Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${String(n).padStart(64, '0')}`, size: 2 },
    layers: [],
  }));

let root: string;
let store: RegistryStore;
let driver: FilesystemDriver;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'airlock-store-'));
  driver = new FilesystemDriver(root);
  store = new RegistryStore(driver, { maxManifestSize: 1 << 20, manifestCacheBytes: 1 << 20 });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('RegistryStore layout', () => {
  it('writes a manifest, its revision and tag links exactly where Distribution does, without newlines', async () => {
    const bytes = manifest(1);
    const m = await store.putManifest('library/alpine', bytes, '3.20');
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
    const { digest } = await store.putManifest('a', bytes, 'v1');
    const byTag = await store.getManifest('a', { kind: 'tag', tag: 'v1' });
    expect(byTag?.bytes).toEqual(bytes);
    expect(byTag?.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect((await store.getManifest('a', { kind: 'digest', digest }))?.digest.equals(digest)).toBe(true);
    expect(await store.getManifest('b', { kind: 'digest', digest })).toBeUndefined();
    expect(await store.getManifest('a', { kind: 'tag', tag: 'v2' })).toBeUndefined();
  });

  it('refuses a manifest blob whose bytes do not match its digest', async () => {
    const bytes = manifest(3);
    const { digest } = await store.putManifest('a', bytes, 'v1');
    const fresh = new RegistryStore(driver, { maxManifestSize: 1 << 20, manifestCacheBytes: 1 << 20 });
    const file = path.join(root, 'docker/registry/v2/blobs/sha256', digest.hex.slice(0, 2), digest.hex, 'data');
    const tampered = Buffer.from(bytes);
    tampered[10] = tampered[10]! ^ 1;
    await writeFile(file, tampered);
    await expect(fresh.getManifest('a', { kind: 'digest', digest })).rejects.toThrow(/hashes to/);
  });

  it('streams blobs with ranges and links them per repository', async () => {
    const data = Buffer.from('0123456789');
    const d = await store.putBlob(data);
    await store.linkBlob('a', d);
    expect(await store.isBlobLinked('a', d)).toBe(true);
    expect(await store.isBlobLinked('b', d)).toBe(false);
    expect((await store.statBlob(d))?.size).toBe(10);
    const chunks: Buffer[] = [];
    for await (const c of (await store.openBlob(d, { start: 2, end: 5 }))!) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('2345');
    expect(await store.openBlob(Digest.parse(`sha256:${'f'.repeat(64)}`))).toBeUndefined();
  });

  it('lists tags sorted, skipping a tag without current/link', async () => {
    for (const t of ['b', 'a', '10', '9', 'A_']) await store.putManifest('r', manifest(4), t);
    await mkdir(path.join(root, 'docker/registry/v2/repositories/r/_manifests/tags/half/index'), { recursive: true });
    expect(await store.listTags('r')).toEqual(['10', '9', 'A_', 'a', 'b']);
    expect(await store.listTags('nope')).toBeUndefined();
  });

  it('walks repositories depth-first in lexical order of components', async () => {
    for (const r of ['a-b', 'a/b', 'a.b', 'a0', 'a/c', 'a', 'z/y/x']) await store.putManifest(r, manifest(5), 't');
    const names: string[] = [];
    for await (const r of store.repositories()) names.push(r);
    expect(names).toEqual(['a', 'a/b', 'a/c', 'a-b', 'a.b', 'a0', 'z/y/x']);
  });
});

describe('FilesystemDriver', () => {
  it('refuses paths that leave the root', async () => {
    for (const p of ['../x', 'a/../../x', '/etc/passwd', 'a/./b', 'a\0b']) {
      expect(() => driver.resolve(p)).toThrow();
    }
  });

  it('an aborted staged write leaves nothing behind and never appears under its path', async () => {
    const w = await driver.stage();
    await w.write(Buffer.alloc(3 << 20, 1));
    await w.abort();
    expect(await readdir(driver.tmpDir)).toEqual([]);
    expect(await driver.stat('x/data')).toBeUndefined();
  });

  it('a committed staged write appears whole, coalescing small writes', async () => {
    const w = await driver.stage();
    for (let i = 0; i < 1000; i++) await w.write(Buffer.alloc(3000, i & 0xff));
    expect(await driver.stat('x/y/data')).toBeUndefined();
    await w.commit('x/y/data');
    expect((await stat(path.join(root, 'x/y/data'))).size).toBe(3_000_000);
    expect(await readdir(driver.tmpDir)).toEqual([]);
  });
});
