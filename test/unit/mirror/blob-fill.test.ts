import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/logging/logger.js';
import { BlobFill, type FillSource } from '../../../src/mirror/blob-fill.js';
import { digestBytes } from '../../../src/oci/digest.js';
import { FilesystemDriver } from '../../../src/storage/filesystem-driver.js';
import { Store } from '../../../src/storage/store.js';
import { TEST_STORE_OPTIONS } from '../../helpers/store-files.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const CHUNK = 64 * KiB;

let root: string;
let store: Store;
const log = createLogger({ level: 'silent' });

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'airlock-fill-'));
  store = new Store(new FilesystemDriver(root), TEST_STORE_OPTIONS);
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

/** Room under storage.maxSize, granted or refused, with what the fill asked for and reported. */
function space(grant: boolean) {
  const calls: Array<{ bytes: number; settled?: boolean }> = [];
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  return {
    calls,
    /** Room is granted only after this (a slow eviction). */
    release,
    reserve: async (bytes: number) => {
      const call: { bytes: number; settled?: boolean } = { bytes };
      calls.push(call);
      await gate;
      return grant ? { settle: (stored: boolean) => void (call.settled ??= stored) } : undefined;
    },
  };
}

function blobPath(bytes: Buffer): string {
  const hex = digestBytes(bytes).hex;
  return path.join(root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
}

describe('BlobFill under storage.maxSize', () => {
  it('asks for room once its size is known and commits only once it has it', async () => {
    const bytes = randomBytes(2 * MiB);
    const room = space(true);
    const outcomes: string[] = [];
    const fill = new BlobFill(digestBytes(bytes), store, source(bytes), { maxResumes: 0, log, space: room, onSettled: (o) => outcomes.push(o) });
    await fill.ready;
    expect(room.calls).toEqual([{ bytes: bytes.length }]);
    // Every byte reaches the client while the room is being made; the store has none yet.
    const got = Buffer.concat(await fill.follow().toArray());
    expect(got.equals(bytes)).toBe(true);
    expect(await readFile(blobPath(bytes)).catch(() => undefined)).toBeUndefined();
    room.release();
    await fill.done;
    expect(fill.stored).toBe(true);
    expect(room.calls).toEqual([{ bytes: bytes.length, settled: true }]);
    expect((await readFile(blobPath(bytes))).equals(bytes)).toBe(true);
    expect(outcomes).toEqual(['done']);
  });

  it('with no room, serves every byte to a client far behind from the staged copy, stores nothing, and removes the copy after the client', async () => {
    const bytes = randomBytes(4 * MiB);
    const room = space(false);
    room.release();
    const outcomes: string[] = [];
    const fill = new BlobFill(digestBytes(bytes), store, source(bytes), { maxResumes: 0, log, space: room, onSettled: (o) => outcomes.push(o) });
    const client = fill.follow();
    const it = client[Symbol.asyncIterator]();
    const parts = [(await it.next()).value as Buffer];
    // The client stalls; the fill runs on and finishes without storing the blob.
    await fill.done;
    expect(fill.stored).toBe(false);
    expect(fill.state).toBe('done');
    expect(outcomes).toEqual(['not_stored']);
    // Refused when the size was known, and again (things may have changed) before the commit.
    expect(room.calls.map((c) => c.bytes)).toEqual([bytes.length, bytes.length]);
    // A client that joins now gets it too, and so does the one far behind (out of the window).
    const late = fill.follow();
    for (let r = await it.next(); !r.done; r = await it.next()) parts.push(r.value as Buffer);
    expect(Buffer.concat(parts).equals(bytes)).toBe(true);
    expect(Buffer.concat(await late.toArray()).equals(bytes)).toBe(true);
    expect(await readFile(blobPath(bytes)).catch(() => undefined)).toBeUndefined();
    // The staged copy goes a few seconds after its last client.
    const tmp = path.join(root, '.airlock/tmp', String(process.pid));
    expect((await readdir(tmp)).length).toBe(1);
    const until = Date.now() + 10_000;
    while ((await readdir(tmp)).length > 0 && Date.now() < until) await sleep(200);
    expect(await readdir(tmp)).toEqual([]);
  }, 20_000);

  it('gives the room back when the fill fails', async () => {
    const bytes = randomBytes(1 * MiB);
    const room = space(true);
    room.release();
    const wrong = Buffer.from(bytes);
    wrong[10] = wrong[10]! ^ 0xff;
    const fill = new BlobFill(digestBytes(bytes), store, source(wrong), { maxResumes: 0, log, space: room });
    await expect(fill.done).rejects.toThrow();
    await sleep(10);
    expect(room.calls).toEqual([{ bytes: bytes.length, settled: false }]);
  });
});
