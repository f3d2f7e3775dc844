/**
 * A store served read-only: the driver wrapper refuses every write before it reaches the medium,
 * and opening a store (app/store.ts) creates nothing in a read-only one, while a writable one
 * gets its temp area as before.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readinessCheck } from '../../../src/app/readiness.js';
import { openStore, StoreNotReadableError } from '../../../src/app/store.js';
import { parseConfig } from '../../../src/config/load.js';
import { UnsupportedError } from '../../../src/oci/errors.js';
import type { StorageDriver } from '../../../src/storage/driver.js';
import { FilesystemDriver } from '../../../src/storage/filesystem-driver.js';
import { ReadOnlyDriver, ReadOnlyStoreError, readOnlyMessage } from '../../../src/storage/read-only-driver.js';

let work: string;

/** Every path under `dir` (directories with a trailing /), sorted. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      out.push(path.relative(dir, p) + (e.isDirectory() ? '/' : ''));
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out.sort();
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'airlock-ro-unit-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('ReadOnlyDriver', () => {
  it('reads through and refuses every write with one message naming the store and why, creating nothing', async () => {
    const root = path.join(work, 'driver');
    await mkdir(path.join(root, 'docker'), { recursive: true });
    await writeFile(path.join(root, 'docker', 'f'), 'bytes');
    const before = await tree(root);
    // As the store sees it: through the StorageDriver interface.
    const d: StorageDriver = new ReadOnlyDriver(new FilesystemDriver(root), { label: root, why: 'storage.readOnly: true' });
    expect((await d.readFile('docker/f', 100))?.toString()).toBe('bytes');
    expect(await d.stat('docker/f')).toMatchObject({ size: 5, isDirectory: false });
    expect(await d.list('docker')).toEqual(['f']);
    const writes: Array<[string, () => Promise<unknown>]> = [
      ['writeFile', () => d.writeFile('docker/g', 'x')],
      ['stage', () => d.stage()],
      ['move', () => d.move('docker/f', 'docker/h')],
      ['delete', () => d.delete('docker')],
      ['deleteFile', () => d.deleteFile('docker/f')],
      ['deleteEmptyDirectory', () => d.deleteEmptyDirectory('docker')],
      ['append', () => d.append('docker/f', (async function* () { yield Buffer.from('y'); })())],
      ['sync', () => d.sync('docker/f')],
      ['touch', () => d.touch('docker/f')],
      ['createExclusive', () => d.createExclusive('docker/i', 'x')],
      ['sweepUnfinished', () => d.sweepUnfinished!(new Date())],
    ];
    for (const [name, op] of writes) {
      const e = await op().then(() => undefined, (x: unknown) => x);
      expect(e, name).toBeInstanceOf(ReadOnlyStoreError);
      // The API answers it as Distribution's read-only mode does: UNSUPPORTED, 405.
      expect(e, name).toBeInstanceOf(UnsupportedError);
      expect((e as ReadOnlyStoreError).code, name).toBe('UNSUPPORTED');
      expect((e as Error).message, name).toMatch(new RegExp(`^the store at ${root} is read-only \\(storage\\.readOnly: true\\): `));
    }
    expect(await tree(root)).toEqual(before);
    expect((await d.readFile('docker/f', 100))?.toString()).toBe('bytes');
  });

  it('has no presign where the medium has none (blob redirects stay off), like the driver it wraps', () => {
    const d = new ReadOnlyDriver(new FilesystemDriver(work), { label: work, why: 'x' });
    expect(d.presign).toBeUndefined();
    expect(d.kind).toBe('filesystem');
  });

  it('words the refusal as the CLI prints it', () => {
    expect(readOnlyMessage({ label: '/srv/store', why: 'storage.root is on a read-only filesystem (EROFS)' }, 'airlock gc would delete from it')).toBe(
      'the store at /srv/store is read-only (storage.root is on a read-only filesystem (EROFS)): airlock gc would delete from it',
    );
  });
});

describe('openStore', () => {
  const config = (root: string, readOnly: boolean) => parseConfig(`storage:\n  root: ${root}\n  readOnly: ${readOnly}\n`, { baseDir: work, env: {} });

  it('with storage.readOnly, creates nothing in the store (no .airlock/tmp) and wraps the driver', async () => {
    const root = path.join(work, 'populated');
    await mkdir(path.join(root, 'docker/registry/v2'), { recursive: true });
    const before = await tree(root);
    const { store, readOnly } = await openStore(config(root, true));
    expect(readOnly).toEqual({ label: root, why: 'storage.readOnly: true' });
    expect(store.driver).toBeInstanceOf(ReadOnlyDriver);
    await expect(store.driver.writeFile('docker/x', 'y')).rejects.toBeInstanceOf(ReadOnlyStoreError);
    expect(await tree(root)).toEqual(before);
  });

  it('with storage.readOnly, refuses a root that does not exist rather than creating it', async () => {
    const root = path.join(work, 'missing');
    await expect(openStore(config(root, true))).rejects.toBeInstanceOf(StoreNotReadableError);
    await expect(readdir(root)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('without it, a writable root is prepared as before: its temp area created, the driver unwrapped', async () => {
    const root = path.join(work, 'writable');
    const { store, readOnly } = await openStore(config(root, false));
    expect(readOnly).toBeUndefined();
    expect(store.driver).toBeInstanceOf(FilesystemDriver);
    expect(await tree(root)).toEqual(['.airlock/', '.airlock/tmp/', `.airlock/tmp/${process.pid}/`]);
  });
});

describe('readiness of a read-only store', () => {
  it('is ready while the root can be read, and says read-only and why', async () => {
    const root = path.join(work, 'ready');
    await mkdir(root);
    const check = readinessCheck(root, new Map(), { label: root, why: 'storage.root is on a read-only filesystem (EROFS)' });
    expect(await check()).toEqual({ ready: true, store: 'read-only: storage.root is on a read-only filesystem (EROFS)', upstreams: {} });
  });

  it('is not ready when the root is gone (an ejected disc)', async () => {
    const check = readinessCheck(path.join(work, 'ejected'), new Map(), { label: 'x', why: 'storage.readOnly: true' });
    const r = await check();
    expect(r.ready).toBe(false);
    expect(r.store).toMatch(/^not readable: ENOENT/);
  });
});
