/**
 * Concurrent lookups of one link or local marker share one read of the store (on an object store
 * each read is a request), and a change made meanwhile is not hidden behind a read begun before it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { digestBytes } from '../../../src/oci/digest.js';
import { SharedCalls } from '../../../src/runtime/shared-calls.js';
import type { FileInfo } from '../../../src/storage/driver.js';
import { FilesystemDriver } from '../../../src/storage/filesystem-driver.js';
import * as p from '../../../src/storage/paths.js';
import { Store } from '../../../src/storage/store.js';
import { TEST_STORE_OPTIONS, tinyManifest } from '../../helpers/store-files.js';

/** A filesystem driver that counts its reads by path and can hold them until released. */
class CountingDriver extends FilesystemDriver {
  readonly reads = new Map<string, number>();
  /** Reads begun while it is set wait for it after reading. */
  gate: Promise<void> | undefined;

  #count(kind: string, logical: string): void {
    const key = `${kind} ${logical}`;
    this.reads.set(key, (this.reads.get(key) ?? 0) + 1);
  }

  override async stat(logical: string): Promise<FileInfo | undefined> {
    this.#count('stat', logical);
    const gate = this.gate;
    const info = await super.stat(logical);
    await gate;
    return info;
  }

  override async readFile(logical: string, maxBytes: number): Promise<Buffer | undefined> {
    this.#count('read', logical);
    const gate = this.gate;
    const buf = await super.readFile(logical, maxBytes);
    await gate;
    return buf;
  }
}

const manifest = tinyManifest;

function held(): { gate: Promise<void>; release(): void } {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  return { gate, release };
}

let root: string;
let driver: CountingDriver;
let store: Store;

/** Opens the store on `root` with nothing remembered, as another process would. */
function open(): void {
  driver = new CountingDriver(root);
  store = new Store(driver, TEST_STORE_OPTIONS);
}

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'airlock-shared-'));
  open();
});
afterEach(() => rm(root, { recursive: true, force: true }));

describe('SharedCalls', () => {
  it('shares a running call by key, starts a new one once it settled or was forgotten, and shares a failure once', async () => {
    const calls = new SharedCalls<number>();
    let made = 0;
    const h = held();
    const slow = () => h.gate.then(() => ++made);
    const a = calls.run('k', slow);
    const b = calls.run('k', slow);
    const other = calls.run('j', slow);
    h.release();
    expect(await Promise.all([a, b, other])).toEqual([1, 1, 2]);
    expect(await calls.run('k', slow)).toBe(3);

    const h2 = held();
    const old = calls.run('k', () => h2.gate.then(() => -1));
    calls.forget('k');
    const h3 = held();
    const fresh = calls.run('k', () => h3.gate.then(() => 10));
    // The forgotten call settling must not drop the newer one from the key.
    h2.release();
    expect(await old).toBe(-1);
    expect(calls.run('k', async () => 99)).toBe(fresh);
    h3.release();
    expect(await fresh).toBe(10);

    let failures = 0;
    const failing = () => Promise.resolve().then(() => { failures++; throw new Error('gone'); });
    await expect(Promise.all([calls.run('f', failing), calls.run('f', failing)])).rejects.toThrow('gone');
    expect(failures).toBe(1);
    await expect(calls.run('f', failing)).rejects.toThrow('gone');
    expect(failures).toBe(2);
  });
});

describe('store lookups', () => {
  it('eight concurrent checks of a local marker, a layer link and a tag read the store once each', async () => {
    const bytes = manifest(1);
    const d = digestBytes(bytes);
    await store.links.putManifest('team/app', bytes, 'v1');
    const layer = digestBytes(bytes.subarray(0, 4));
    await store.links.linkBlob('team/app', layer);
    // A second store on the same directory: another process, with nothing remembered.
    open();
    const h = held();
    driver.gate = h.gate;
    const eight = <T>(fn: () => Promise<T>) => Promise.all(Array.from({ length: 8 }, fn));
    const marks = eight(() => store.local.has('team/app'));
    const layers = eight(() => store.links.isBlobLinked('team/app', layer));
    const tags = eight(() => store.links.resolveTag('team/app', 'v1'));
    h.release();
    expect(await marks).toEqual(Array(8).fill(false));
    expect(await layers).toEqual(Array(8).fill(true));
    expect((await tags).map(String)).toEqual(Array(8).fill(d.toString()));
    expect(Object.fromEntries(driver.reads)).toEqual({
      // A marker is a file: one read, no stat (on S3 a stat of a missing name also lists it).
      [`read ${p.localMarkerPath('team/app')}`]: 1,
      [`stat ${p.layerLinkPath('team/app', layer)}`]: 1,
      [`read ${p.tagCurrentLinkPath('team/app', 'v1')}`]: 1,
    });
  });

  it('a name marked local while a look at its marker runs stays local', async () => {
    const h = held();
    driver.gate = h.gate;
    const look = store.local.has('team/pushed');
    // Let the look read the (missing) marker before mark() writes it.
    while (!driver.reads.size) await new Promise((r) => setTimeout(r, 1));
    driver.gate = undefined;
    await store.local.mark('team/pushed');
    h.release();
    // The look read no marker, but it ends after the mark: the mark's answer wins, now and later.
    expect(await look).toBe(true);
    expect(await store.local.has('team/pushed')).toBe(true);
  });

  it('a marker too large to read still marks its name local', async () => {
    await driver.writeFile(p.localMarkerPath('team/odd'), 'x'.repeat(100_000));
    expect(await store.local.has('team/odd')).toBe(true);
    expect(await store.local.has('team/none')).toBe(false);
  });

  it('after forgetTag, a tag read does not join a read begun before the tag moved', async () => {
    const one = manifest(1);
    const two = manifest(2);
    await store.links.putManifest('team/app', one, 'v1');
    const other = new Store(new FilesystemDriver(root), TEST_STORE_OPTIONS);
    store.links.forgetTag('team/app', 'v1');
    const h = held();
    driver.gate = h.gate;
    const before = store.links.resolveTag('team/app', 'v1');
    while (!driver.reads.size) await new Promise((r) => setTimeout(r, 1));
    // Another replica moves the tag; this one is told to forget what it knew.
    await other.links.putManifest('team/app', two, 'v1');
    store.links.forgetTag('team/app', 'v1');
    driver.gate = undefined;
    const after = store.links.resolveTag('team/app', 'v1');
    // Joining the held read would wait for the release below: give up on that after 2 s.
    const late = new Promise<string>((r) => setTimeout(() => r('joined the read begun before the move'), 2000).unref());
    expect(await Promise.race([after.then(String), late])).toBe(digestBytes(two).toString());
    h.release();
    expect(String(await before)).toBe(digestBytes(one).toString());
  });
});
