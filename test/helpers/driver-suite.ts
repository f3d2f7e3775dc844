/**
 * The test suite every storage driver passes (Distribution's registry/storage/driver/testsuites):
 * what src/storage/driver.ts promises, checked on real bytes. A driver's test file calls
 * driverSuite() with a harness that makes a fresh, empty driver for each test.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppendOffsetError, FileTooLargeError, type PositionalReader, type StorageDriver } from '../../src/storage/driver.js';

export interface DriverHarness {
  /** A driver on an empty root (a fresh directory, a fresh key prefix). */
  create(): Promise<StorageDriver>;
  /** Releases what create() made. */
  destroy(driver: StorageDriver): Promise<void>;
  /** Temp files and unfinished uploads the driver left behind (none, after every test). */
  leftovers?(driver: StorageDriver): Promise<string[]>;
  /** Staged writes above this many bytes go in parts (an object store's part size); default 1 MiB. */
  partSize?: number;
  /** The driver has presigned URLs (an object store). */
  presign?: boolean;
  /** The driver has unfinished writes to sweep (an object store's multipart uploads). */
  sweepUnfinished?: boolean;
}

const MiB = 1 << 20;

async function readAll(s: Readable | undefined): Promise<Buffer> {
  if (!s) throw new Error('expected a stream, got undefined');
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Reads `length` bytes from `position` (fewer at the end), however the reader splits them. */
async function readAt(r: PositionalReader, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let off = 0;
  while (off < length) {
    const n = await r.read(buf.subarray(off), position + off);
    if (n === 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}

async function* chunks(...parts: Array<Buffer | string | Error>): AsyncGenerator<Uint8Array> {
  for (const p of parts) {
    if (p instanceof Error) throw p;
    yield typeof p === 'string' ? Buffer.from(p) : p;
  }
}

/** Every file under `dir`, found with list() and stat() alone (how the stores walk). */
async function walk(driver: StorageDriver, dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await driver.list(dir)) ?? []) {
    const child = `${dir}/${name}`;
    const st = await driver.stat(child);
    if (st?.isDirectory) out.push(...(await walk(driver, child)));
    else if (st) out.push(child);
  }
  return out;
}

export function driverSuite(name: string, harness: DriverHarness): void {
  const partSize = harness.partSize ?? MiB;

  describe(`storage driver suite: ${name}`, () => {
    let driver: StorageDriver;
    beforeEach(async () => {
      driver = await harness.create();
    });
    afterEach(async () => {
      try {
        if (harness.leftovers) expect(await harness.leftovers(driver)).toEqual([]);
      } finally {
        await harness.destroy(driver);
      }
    });

    // ---- small files ---------------------------------------------------------------------

    it('writes and reads small files whole, strings and bytes, creating parent directories', async () => {
      expect(driver.kind).toMatch(/^[a-z0-9]+$/);
      await driver.writeFile('a/b/c/text', 'hello, store');
      expect((await driver.readFile('a/b/c/text', 1024))?.toString()).toBe('hello, store');
      const binary = Buffer.from([0, 0xff, 0xfe, 0x80, 10, 13, 0]);
      await driver.writeFile('a/binary', binary);
      expect(await driver.readFile('a/binary', 1024)).toEqual(binary);
      // A shorter write replaces the content entirely (no tail of the old one).
      await driver.writeFile('a/b/c/text', 'bye');
      expect((await driver.readFile('a/b/c/text', 1024))?.toString()).toBe('bye');
      await driver.writeFile('a/empty', '');
      expect((await driver.readFile('a/empty', 1024))?.length).toBe(0);
      expect((await driver.stat('a/empty'))?.size).toBe(0);
      expect(await readAll(await driver.readStream('a/empty'))).toEqual(Buffer.alloc(0));
    });

    it('refuses to read a file larger than the caller allows', async () => {
      await driver.writeFile('big', Buffer.alloc(100, 7));
      await expect(driver.readFile('big', 99)).rejects.toBeInstanceOf(FileTooLargeError);
      expect((await driver.readFile('big', 100))?.length).toBe(100);
    });

    it('answers undefined (or false) for what is missing, and deleting it is no error', async () => {
      await driver.writeFile('here/file', 'x');
      for (const p of ['nothing', 'here/nothing', 'nothing/deeper/still']) {
        expect(await driver.stat(p)).toBeUndefined();
        expect(await driver.readFile(p, 1024)).toBeUndefined();
        expect(await driver.readStream(p)).toBeUndefined();
        expect(await driver.openReader(p)).toBeUndefined();
        expect(await driver.list(p)).toBeUndefined();
        expect(await driver.append(p, chunks('x'))).toBeUndefined();
        expect(await driver.touch(p)).toBe(false);
        await driver.deleteFile(p);
        await driver.delete(p);
        await driver.deleteEmptyDirectory(p);
      }
      // Nothing was created by any of that.
      expect(await driver.list('nothing')).toBeUndefined();
      expect(await driver.list('here')).toEqual(['file']);
    });

    it('stats files and directories', async () => {
      const before = Date.now();
      await driver.writeFile('s/dir/file', Buffer.alloc(1234, 1));
      const f = await driver.stat('s/dir/file');
      expect(f).toMatchObject({ size: 1234, isDirectory: false });
      // Object stores keep whole seconds; clocks on one host agree within that.
      expect(Math.abs(f!.modTime.getTime() - before)).toBeLessThan(60_000);
      expect((await driver.stat('s/dir'))?.isDirectory).toBe(true);
      expect((await driver.stat('s'))?.isDirectory).toBe(true);
    });

    it('refuses paths that leave the root', async () => {
      for (const p of ['../x', 'a/../../x', '/etc/passwd', 'a/./b', 'a\0b']) {
        await expect(driver.stat(p)).rejects.toThrow();
        await expect(driver.readFile(p, 10)).rejects.toThrow();
        await expect(driver.writeFile(p, 'x')).rejects.toThrow();
      }
    });

    // ---- reads ---------------------------------------------------------------------------

    it('streams whole files and inclusive byte ranges', async () => {
      const data = randomBytes(3 * MiB + 17);
      await driver.writeFile('r/data', data);
      expect((await readAll(await driver.readStream('r/data'))).equals(data)).toBe(true);
      const ranges: Array<[number, number]> = [
        [0, 0],
        [1000, 1999],
        [500_000, 2_100_000],
        [data.length - 10, data.length - 1],
        [0, data.length - 1],
      ];
      for (const [start, end] of ranges) {
        const got = await readAll(await driver.readStream('r/data', { start, end }));
        expect(got.length).toBe(end - start + 1);
        expect(got.equals(data.subarray(start, end + 1))).toBe(true);
      }
    });

    it('reads at any offset with a positional reader, in any order', async () => {
      const data = randomBytes(2 * MiB + 5);
      await driver.writeFile('p/data', data);
      const r = await driver.openReader('p/data');
      expect(r).toBeDefined();
      try {
        expect((await readAt(r!, 0, 4096)).equals(data.subarray(0, 4096))).toBe(true);
        expect((await readAt(r!, 4096, 100_000)).equals(data.subarray(4096, 104_096))).toBe(true);
        expect((await readAt(r!, MiB + 3, 777)).equals(data.subarray(MiB + 3, MiB + 780))).toBe(true);
        // Backwards, and the tail: fewer bytes than asked, then none.
        expect((await readAt(r!, 10, 10)).equals(data.subarray(10, 20))).toBe(true);
        expect((await readAt(r!, data.length - 5, 100)).equals(data.subarray(data.length - 5))).toBe(true);
        expect(await r!.read(Buffer.alloc(10), data.length)).toBe(0);
      } finally {
        await r!.close();
      }
    });

    // ---- listings and walks --------------------------------------------------------------

    it('lists the names under a directory, files and subdirectories, sorted by code unit', async () => {
      for (const n of ['b', 'a', '10', '9', 'B', '_x', 'a.b', 'a-b', 'sub/deep/f', 'sub/g']) await driver.writeFile(`l/${n}`, n);
      expect(await driver.list('l')).toEqual(['10', '9', 'B', '_x', 'a', 'a-b', 'a.b', 'b', 'sub']);
      expect(await driver.list('l/sub')).toEqual(['deep', 'g']);
      expect(await driver.list('l/sub/deep')).toEqual(['f']);
    });

    it('walks a tree with list and stat, finding every file once', async () => {
      const files = ['w/r/a/_layers/sha256/01/link', 'w/r/a/_manifests/tags/v1/current/link', 'w/r/b/c/_manifests/revisions/sha256/02/link', 'w/blobs/sha256/ab/abcd/data', 'w/top'];
      for (const f of files) await driver.writeFile(f, f);
      const found = await walk(driver, 'w');
      expect(found.sort()).toEqual([...files].sort());
      for (const f of found) expect((await driver.readFile(f, 1024))?.toString()).toBe(f);
    });

    it('lists a directory of more entries than one page holds', async () => {
      const names = Array.from({ length: 1010 }, (_, i) => `n${String(i).padStart(4, '0')}`);
      for (let i = 0; i < names.length; i += 50) await Promise.all(names.slice(i, i + 50).map((n) => driver.writeFile(`many/${n}`, n)));
      expect(await driver.list('many')).toEqual(names);
    });

    // ---- staged writes -------------------------------------------------------------------

    it('stages a large write invisibly, lets readers follow what is flushed, and commits it whole', async () => {
      const data = randomBytes(2 * partSize + 3 * MiB + 123);
      const w = await driver.stage();
      let at = 0;
      for (let i = 0; at < data.length; i++) {
        const n = Math.min(data.length - at, 1 + ((i * 7919) % (MiB + 3)));
        await w.write(data.subarray(at, at + n));
        at += n;
        if (i === 3) {
          await w.flush();
          expect(w.bytesReadable).toBe(at);
          const r = await w.openReader();
          try {
            expect((await readAt(r!, 0, at)).equals(data.subarray(0, at))).toBe(true);
          } finally {
            await r!.close();
          }
        }
      }
      expect(w.bytesWritten).toBe(data.length);
      expect(await driver.stat('staged/blob')).toBeUndefined();
      await w.commit('staged/blob');
      expect((await driver.stat('staged/blob'))?.size).toBe(data.length);
      expect((await readAll(await driver.readStream('staged/blob'))).equals(data)).toBe(true);
      await expect(w.commit('staged/again')).rejects.toThrow();
      expect(await driver.stat('staged/again')).toBeUndefined();
    });

    it('commits a staged write whose target was named early, and one committed elsewhere than its target', async () => {
      const data = randomBytes(partSize + MiB);
      const w = await driver.stage();
      w.target?.('t/final');
      for (let at = 0; at < data.length; at += MiB) await w.write(data.subarray(at, at + MiB));
      await w.flush();
      expect(await driver.stat('t/final')).toBeUndefined();
      await w.commit('t/final');
      expect((await readAll(await driver.readStream('t/final'))).equals(data)).toBe(true);

      const other = randomBytes(partSize + 2 * MiB);
      const v = await driver.stage();
      v.target?.('t/guess');
      for (let at = 0; at < other.length; at += MiB) await v.write(other.subarray(at, at + MiB));
      await v.commit('t/actual');
      expect((await readAll(await driver.readStream('t/actual'))).equals(other)).toBe(true);
      expect(await driver.stat('t/guess')).toBeUndefined();
    });

    it('discards an aborted staged write, whatever it had written or targeted', async () => {
      const w = await driver.stage();
      w.target?.('ab/never');
      await w.write(randomBytes(partSize + MiB));
      await w.flush();
      await w.abort();
      await w.abort();
      expect(await driver.stat('ab/never')).toBeUndefined();
      expect(await driver.list('ab')).toBeUndefined();
      await expect(w.commit('ab/never')).rejects.toThrow();
      expect(await driver.stat('ab/never')).toBeUndefined();
    });

    it('commits over an existing file, after a seal, and with no bytes at all', async () => {
      await driver.writeFile('c/file', 'old content that is longer');
      const w = await driver.stage();
      await w.write(Buffer.from('new'));
      await w.seal();
      await w.commit('c/file');
      expect((await driver.readFile('c/file', 1024))?.toString()).toBe('new');
      const empty = await driver.stage();
      await empty.commit('c/empty');
      expect((await driver.stat('c/empty'))?.size).toBe(0);
    });

    it('creates a file exclusively, once, also when writers race', async () => {
      expect(await driver.createExclusive('x/lease', 'first')).toBe(true);
      expect(await driver.createExclusive('x/lease', 'second')).toBe(false);
      expect((await driver.readFile('x/lease', 1024))?.toString()).toBe('first');
      const bodies = Array.from({ length: 8 }, (_, i) => `racer-${i}`);
      const won = await Promise.all(bodies.map((b) => driver.createExclusive('x/race', b)));
      expect(won.filter(Boolean)).toHaveLength(1);
      expect((await driver.readFile('x/race', 1024))?.toString()).toBe(bodies[won.indexOf(true)]);
    });

    // ---- moves, deletes, appends, times --------------------------------------------------

    it('moves files and whole directory trees', async () => {
      await driver.writeFile('m/a/one', '1');
      await driver.writeFile('m/a/sub/two', '2');
      await driver.move('m/a', 'n/b');
      expect(await driver.stat('m/a')).toBeUndefined();
      expect((await driver.readFile('n/b/one', 10))?.toString()).toBe('1');
      expect((await driver.readFile('n/b/sub/two', 10))?.toString()).toBe('2');
      await driver.move('n/b/one', 'o/one');
      expect(await driver.stat('n/b/one')).toBeUndefined();
      expect((await driver.readFile('o/one', 10))?.toString()).toBe('1');
      await expect(driver.move('m/missing', 'p/x')).rejects.toThrow();
      expect(await driver.stat('p/x')).toBeUndefined();
    });

    it('deletes files and whole trees', async () => {
      for (const f of ['d/t/1', 'd/t/2', 'd/t/sub/3', 'd/keep']) await driver.writeFile(f, f);
      await driver.deleteFile('d/t/1');
      expect(await driver.stat('d/t/1')).toBeUndefined();
      expect((await driver.readFile('d/t/2', 10))?.toString()).toBe('d/t/2');
      await driver.delete('d/t');
      expect(await driver.stat('d/t')).toBeUndefined();
      expect(await driver.stat('d/t/sub/3')).toBeUndefined();
      expect(await driver.list('d')).toEqual(['keep']);
      await driver.delete('d/keep');
      // An emptied directory stays on a filesystem; an object store has none to keep.
      expect((await driver.list('d')) ?? []).toEqual([]);
    });

    it('removes a directory only when it is empty', async () => {
      await driver.writeFile('e/dir/file', 'x');
      await driver.deleteEmptyDirectory('e/dir');
      expect((await driver.readFile('e/dir/file', 10))?.toString()).toBe('x');
      await driver.deleteFile('e/dir/file');
      await driver.deleteEmptyDirectory('e/dir');
      expect(await driver.stat('e/dir')).toBeUndefined();
      expect((await driver.list('e')) ?? []).toEqual([]);
    });

    it('appends all or nothing, at the size the writer expects', async () => {
      await driver.writeFile('u/data', '');
      expect(await driver.append('u/data', chunks('abc', 'def'))).toBe(6);
      expect(await driver.append('u/data', chunks('ghi'), 6)).toBe(9);
      expect((await driver.readFile('u/data', 100))?.toString()).toBe('abcdefghi');
      await expect(driver.append('u/data', chunks('zzz'), 4)).rejects.toBeInstanceOf(AppendOffsetError);
      await expect(driver.append('u/data', chunks('jkl', new Error('client went away')), 9)).rejects.toThrow('client went away');
      expect((await driver.readFile('u/data', 100))?.toString()).toBe('abcdefghi');
      expect(await driver.append('u/data', chunks(), 9)).toBe(9);
      expect((await driver.stat('u/data'))?.size).toBe(9);
    });

    it('appends to a file larger than a part', async () => {
      const old = randomBytes(partSize + MiB);
      const more = randomBytes(MiB + 11);
      await driver.writeFile('u/big', old);
      expect(await driver.append('u/big', chunks(more.subarray(0, 1000), more.subarray(1000)), old.length)).toBe(old.length + more.length);
      expect((await readAll(await driver.readStream('u/big'))).equals(Buffer.concat([old, more]))).toBe(true);
    });

    it('appends many write batches in order, and a body broken after several leaves the file as it was', async () => {
      const head = randomBytes(777);
      const parts = Array.from({ length: 40 }, () => randomBytes(100_003));
      await driver.writeFile('u/many', head);
      expect(await driver.append('u/many', chunks(...parts), head.length)).toBe(head.length + 40 * 100_003);
      const whole = Buffer.concat([head, ...parts]);
      expect((await readAll(await driver.readStream('u/many'))).equals(whole)).toBe(true);
      await expect(driver.append('u/many', chunks(...parts, ...parts, new Error('cut')), whole.length)).rejects.toThrow('cut');
      expect((await driver.stat('u/many'))?.size).toBe(whole.length);
      expect((await readAll(await driver.readStream('u/many'))).equals(whole)).toBe(true);
    });

    it('syncs a file without changing it', async () => {
      await driver.writeFile('y/file', 'durable');
      await driver.sync('y/file');
      expect((await driver.readFile('y/file', 100))?.toString()).toBe('durable');
    });

    it('touches a file: a newer modification time, the same bytes', async () => {
      await driver.writeFile('z/file', 'unchanged');
      const before = (await driver.stat('z/file'))!.modTime.getTime();
      // Object stores keep whole seconds.
      await sleep(1100);
      expect(await driver.touch('z/file')).toBe(true);
      expect((await driver.stat('z/file'))!.modTime.getTime()).toBeGreaterThan(before);
      expect((await driver.readFile('z/file', 100))?.toString()).toBe('unchanged');
    });

    // ---- what only some media have -------------------------------------------------------

    it.runIf(harness.presign === true)('presigns a URL that GETs the file without credentials', async () => {
      const data = randomBytes(4096);
      await driver.writeFile('url/file', data);
      const res = await fetch(await driver.presign!('url/file', 60));
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
    });

    it.runIf(harness.sweepUnfinished === true)('sweeps unfinished writes begun before a time, unless a writer still owns them', async () => {
      const path = `docker/registry/v2/blobs/sha256/ab/ab${'0'.repeat(62)}/data`;
      const w = await driver.stage();
      try {
        w.target?.(path);
        await w.write(randomBytes(partSize + 1));
        await w.flush();
        const future = new Date(Date.now() + 3600_000);
        // The part upload starts in the background: wait until the medium shows it.
        const seen: string[] = [];
        for (let i = 0; i < 100 && !seen.includes(path); i++) {
          const owned = async (p: string) => {
            seen.push(p);
            return true;
          };
          expect(await driver.sweepUnfinished!(future, owned)).toBe(0);
          if (!seen.includes(path)) await sleep(100);
        }
        expect(seen).toContain(path);
        expect(await driver.sweepUnfinished!(new Date(Date.now() - 3600_000), async () => false)).toBe(0);
        expect(await driver.sweepUnfinished!(future, async () => false)).toBe(1);
        expect(await driver.sweepUnfinished!(future, async () => false)).toBe(0);
      } finally {
        await w.abort();
      }
      expect(await driver.stat(path)).toBeUndefined();
    });
  });
}
