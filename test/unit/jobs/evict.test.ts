/**
 * storage.maxSize as a ceiling (evict.ts): reservations never grant more than the store has
 * room for, and make room by evicting images not served within evictMinAge first, then
 * recently served ones, least recently served first; never pinned images or images in use, and
 * nothing at all when the room cannot be made anyway.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Evictor, storeTotals, type EvictOptions } from '../../../src/jobs/evict.js';
import { createLogger } from '../../../src/logging/logger.js';
import type { Digest } from '../../../src/oci/digest.js';
import { AccessTimes } from '../../../src/storage/access-times.js';
import { FilesystemDriver } from '../../../src/storage/filesystem-driver.js';
import { Store } from '../../../src/storage/store.js';
import { TEST_STORE_OPTIONS } from '../../helpers/store-files.js';

const log = createLogger({ level: 'silent' });
let root: string;
let store: Store;
let access: AccessTimes;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'airlock-evict-'));
  const driver = new FilesystemDriver(root);
  store = new Store(driver, TEST_STORE_OPTIONS);
  access = new AccessTimes(driver);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** An image of one 1000-byte layer in `repo`, last served `ago` ms ago. */
async function image(repo: string, ago: number): Promise<{ manifest: Digest; layer: Digest }> {
  const layer = randomBytes(1000);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', repo }));
  const l = await store.blobs.put(layer);
  const c = await store.blobs.put(config);
  await store.links.linkBlob(repo, l);
  await store.links.linkBlob(repo, c);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: c.toString(), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.toString(), size: layer.length }],
  }));
  const m = await store.links.putManifest(repo, manifest, 'v1');
  access.touch(repo, m.digest.toString(), Date.now() - ago);
  return { manifest: m.digest, layer: l };
}

function evictor(maxSize: number, busy: Set<string> = new Set()): Evictor {
  const opts: EvictOptions = { maxSize, evictAt: 0.95, evictTo: 0.85, evictable: () => true, busy: () => busy, recentMs: 60_000 };
  return new Evictor(store, access, opts, log);
}

const present = async (d: Digest) => (await store.blobs.stat(d)) !== undefined;

describe('Evictor.reserve', () => {
  it('grants concurrent reservations only while they fit, and takes back room that was not used', async () => {
    const e = evictor(1000);
    const granted = await Promise.all([e.reserve(400, 'a'), e.reserve(400, 'b'), e.reserve(400, 'c')]);
    expect(granted.filter(Boolean)).toHaveLength(2);
    expect(granted[2]).toBeUndefined();
    granted[0]!.settle(false);
    const again = await e.reserve(400, 'd');
    expect(again).toBeDefined();
    expect(await e.reserve(300, 'e')).toBeUndefined();
    // Settled once: a second settle changes nothing.
    granted[1]!.settle(false);
    granted[1]!.settle(true);
    expect(await e.reserve(300, 'f')).toBeDefined();
    expect(await e.reserve(301, 'g')).toBeUndefined();
    // Larger than the ceiling itself: refused at once.
    expect(await e.reserve(1001, 'h')).toBeUndefined();
  });

  it('evicts the images not served within evictMinAge first, then recent ones least recently served first, never pinned or in-use ones, and nothing for room it cannot make', async () => {
    const old = await image('m/old', 2 * 3600_000);
    const r1 = await image('m/r1', 20_000);
    const r2 = await image('m/r2', 10_000);
    const pinned = await image('m/pinned', 3 * 3600_000);
    await store.pins.pin('m/pinned', pinned.manifest);
    const used = await image('m/used', 4 * 3600_000);
    const total = (await storeTotals(store)).bytes;
    const unit = total / 5;
    const e = evictor(Math.round(total + 500), new Set([used.layer.toString()]));
    // Room for 1000 more: the old image goes, recent ones stay.
    const a = await e.reserve(1000, 'a');
    expect(a).toBeDefined();
    expect(await present(old.layer)).toBe(false);
    expect(await store.links.getManifest('m/old', { kind: 'tag', tag: 'v1' })).toBeUndefined();
    for (const x of [r1, r2, pinned, used]) expect(await present(x.layer)).toBe(true);
    // Room for 2000 more: only recent images are left to go; the least recently served goes.
    const b = await e.reserve(2000, 'b');
    expect(b).toBeDefined();
    expect(await present(r1.layer)).toBe(false);
    for (const x of [r2, pinned, used]) expect(await present(x.layer)).toBe(true);
    // Room that even evicting r2 could not make: refused, and r2 stays.
    expect(await e.reserve(Math.round(unit * 2), 'c')).toBeUndefined();
    for (const x of [r2, pinned, used]) expect(await present(x.layer)).toBe(true);
    // The store never held more than the ceiling with what was granted.
    expect((await storeTotals(store)).bytes + 3000).toBeLessThanOrEqual(Math.round(total + 500));
  });
});
