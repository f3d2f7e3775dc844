import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/logging/logger.js';
import { BlobFill, type FillSource } from '../../../src/mirror/blob-fill.js';
import { digestBytes } from '../../../src/oci/digest.js';
import { FilesystemDriver } from '../../../src/storage/filesystem-driver.js';
import { RegistryStore } from '../../../src/storage/registry-store.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const CHUNK = 64 * KiB;

let root: string;
let store: RegistryStore;
const log = createLogger({ level: 'silent' });

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'airlock-fill-'));
  store = new RegistryStore(new FilesystemDriver(root), { maxManifestSize: 1 << 20, manifestCacheBytes: 1 << 20 });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** An upstream body that hands out 64 KiB chunks only as fast as the fill takes them. */
function source(bytes: Buffer): FillSource {
  return {
    open: async () => {
      let at = 0;
      const body = new Readable({
        highWaterMark: CHUNK,
        read() {
          this.push(at < bytes.length ? bytes.subarray(at, (at += CHUNK)) : null);
        },
      });
      return { total: bytes.length, start: 0, body };
    },
  };
}

describe('BlobFill followers', () => {
  it('a client that reads nothing more until the fill is done still gets every byte after it', async () => {
    const bytes = randomBytes(4 * MiB);
    const fill = new BlobFill(digestBytes(bytes), store, source(bytes), { maxResumes: 0, log });
    const client = fill.follow();
    const it = client[Symbol.asyncIterator]();
    const first = (await it.next()).value as Buffer;
    const t0 = performance.now();
    // The client takes nothing more until the fill is done, then reads the rest: from the window's
    // last bytes and the stored blob, through its plain Readable (not a response).
    await fill.done;
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(fill.received).toBe(bytes.length);
    const parts = [first];
    for (let r = await it.next(); !r.done; r = await it.next()) parts.push(r.value as Buffer);
    expect(Buffer.concat(parts).equals(bytes)).toBe(true);
  }, 10_000);
});
