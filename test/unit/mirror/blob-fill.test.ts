import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
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

describe('BlobFill pace', () => {
  it('keeps within reach of a slow client, which then gets every byte from memory', async () => {
    const bytes = randomBytes(4 * MiB);
    const fill = new BlobFill(digestBytes(bytes), store, source(bytes), { maxResumes: 0, log });
    const client = fill.follow();
    let got = 0;
    let furthestAhead = 0;
    const parts: Buffer[] = [];
    for await (const c of client) {
      parts.push(c as Buffer);
      got += (c as Buffer).length;
      furthestAhead = Math.max(furthestAhead, fill.received - got);
      await sleep(5);
    }
    await fill.done;
    expect(Buffer.concat(parts).equals(bytes)).toBe(true);
    // 512 KiB ahead of the bytes the client's stream took, plus what that stream holds (its
    // 128 KiB buffer and a read): a fill that ran free would be the whole blob ahead.
    expect(furthestAhead).toBeLessThanOrEqual(1 * MiB);
    const hex = digestBytes(bytes).hex;
    expect((await readFile(path.join(root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data'))).equals(bytes)).toBe(true);
  });

  it('goes on without a client that stopped reading, which still gets every byte later', async () => {
    const bytes = randomBytes(4 * MiB);
    const fill = new BlobFill(digestBytes(bytes), store, source(bytes), { maxResumes: 0, log });
    const client = fill.follow();
    const it = client[Symbol.asyncIterator]();
    const first = (await it.next()).value as Buffer;
    const t0 = performance.now();
    // The client takes nothing more: the fill waits for it only briefly (250 ms), then runs free.
    // Then the client reads the rest, from the window's last bytes and the stored blob, through
    // its plain Readable (before a fix in pooled-readable.ts, that read hung).
    await fill.done;
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(fill.received).toBe(bytes.length);
    const parts = [first];
    for (let r = await it.next(); !r.done; r = await it.next()) parts.push(r.value as Buffer);
    expect(Buffer.concat(parts).equals(bytes)).toBe(true);
  }, 10_000);

  it('runs free once its only client has gone', async () => {
    const bytes = randomBytes(4 * MiB);
    const fill = new BlobFill(digestBytes(bytes), store, source(bytes), { maxResumes: 0, log });
    const client = fill.follow();
    const it = client[Symbol.asyncIterator]();
    await it.next();
    client.destroy();
    const t0 = performance.now();
    await fill.done;
    // Well under the 250 ms a stalled client could hold it: the client left, it does not count.
    expect(performance.now() - t0).toBeLessThan(200);
    expect(fill.state).toBe('done');
  });
});
