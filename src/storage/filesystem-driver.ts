import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, rename, rm, rmdir, stat, unlink, utimes, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { AppendOffsetError, FileTooLargeError, type FileInfo, type PositionalReader, type StagedWrite, type StorageDriver } from './driver.js';
import { TMP } from './paths.js';
import { PooledReadable } from './pooled-readable.js';

/** Small writes are coalesced into this much before a write(2). */
const WRITE_BUFFER = 1 << 20;

function isNotFound(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Opens a file, or undefined when it (or a directory on its path) does not exist. */
async function openIfExists(file: string, flags: string): Promise<FileHandle | undefined> {
  try {
    return await open(file, flags);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Writes all of `bufs` at `position` (or the current offset), continuing where writev stopped short. */
async function writevAll(fh: FileHandle, bufs: Buffer[], total: number, position?: number): Promise<void> {
  let left = total;
  let pos = position;
  while (left > 0) {
    const { bytesWritten } = await fh.writev(bufs, pos);
    left -= bytesWritten;
    if (pos !== undefined) pos += bytesWritten;
    if (left === 0) break;
    let skip = bytesWritten;
    while (skip > 0 && bufs.length > 0) {
      const first = bufs[0]!;
      if (first.length <= skip) {
        skip -= first.length;
        bufs = bufs.slice(1);
      } else {
        bufs = [first.subarray(skip), ...bufs.slice(1)];
        skip = 0;
      }
    }
  }
}

function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/**
 * Read size for stored files: with one read ahead, 512 KiB keeps up with loopback sockets (the
 * per-read overhead dominates below that), and a response holds at most two.
 */
const LOCAL_READ = 512 << 10;

/** A file (or an inclusive range of it) as a stream; reads at the stream's own position. */
class FileStream extends PooledReadable {
  #pos: number;

  constructor(private readonly fh: FileHandle, start: number, private readonly end: number | undefined) {
    super(LOCAL_READ);
    this.#pos = start;
  }

  protected override remaining(): number | undefined {
    return this.end === undefined ? undefined : this.end + 1 - this.#pos;
  }

  protected async next(buf: Buffer): Promise<number> {
    const want = Math.min(buf.length, this.remaining() ?? buf.length);
    if (want <= 0) return 0;
    const { bytesRead } = await this.fh.read(buf, 0, want, this.#pos);
    this.#pos += bytesRead;
    return bytesRead;
  }

  protected release(): Promise<void> {
    return this.fh.close();
  }
}

/**
 * Bytes are gathered up to WRITE_BUFFER and written with one writev in the background (write
 * behind): the caller goes on receiving while the previous batch is on its way to the file, and
 * waits only when a second batch is full before the first is written (memory: two batches).
 */
class FileStagedWrite implements StagedWrite {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #written = 0;
  #inFlight: Promise<void> | undefined;
  #inFlightBytes = 0;
  /** A background write failed: every later call fails with it. */
  #failed: Error | undefined;
  #done = false;
  #sealed = false;

  constructor(private readonly fh: FileHandle, readonly tmpPath: string, private readonly driver: FilesystemDriver) {}

  get bytesWritten(): number {
    return this.#written + this.#inFlightBytes + this.#pendingBytes;
  }

  get bytesReadable(): number {
    return this.#written;
  }

  async openReader(): Promise<PositionalReader | undefined> {
    // An open descriptor survives the rename at commit: the reader keeps reading the same inode.
    return this.driver.openReaderAt(this.tmpPath);
  }

  /** Writes through now, so followers can read everything written so far. */
  async flush(): Promise<void> {
    await this.#flush();
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#done || this.#sealed) throw new Error('write after seal, commit or abort');
    if (this.#failed) throw this.#failed;
    // Kept by reference and written with writev: no copy, no concatenation. Callers hand over
    // chunks they do not reuse (a network read's buffer, a fresh allocation).
    this.#pending.push(asBuffer(chunk));
    this.#pendingBytes += chunk.byteLength;
    if (this.#pendingBytes < WRITE_BUFFER) return;
    // One batch in flight at a time keeps the writes in order (the file's own offset).
    if (this.#inFlight) await this.#inFlight;
    if (this.#failed) throw this.#failed;
    this.#inFlight = this.#writeBatch();
  }

  /** Starts writing the gathered bytes; resolves (never rejects) once they are written or failed. */
  #writeBatch(): Promise<void> {
    const bufs = this.#pending;
    const total = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#inFlightBytes = total;
    return writevAll(this.fh, bufs, total).then(
      () => {
        this.#written += total;
        this.#inFlightBytes = 0;
        this.#inFlight = undefined;
      },
      (e: unknown) => {
        this.#failed = e instanceof Error ? e : new Error(String(e));
        this.#inFlightBytes = 0;
        this.#inFlight = undefined;
      },
    );
  }

  async #flush(): Promise<void> {
    if (this.#inFlight) await this.#inFlight;
    if (this.#failed) throw this.#failed;
    if (this.#pendingBytes === 0) return;
    this.#inFlight = this.#writeBatch();
    await this.#inFlight;
    if (this.#failed) throw this.#failed;
  }

  async seal(): Promise<void> {
    if (this.#done) throw new Error('seal after commit or abort');
    if (this.#sealed) return;
    await this.#flush();
    // One fdatasync per object, not per chunk (DESIGN.md: performance facts).
    await this.fh.datasync();
    await this.fh.close();
    this.#sealed = true;
  }

  async commit(logical: string): Promise<void> {
    if (this.#done) throw new Error('commit after commit or abort');
    try {
      await this.seal();
      this.#done = true;
      const final = this.driver.resolve(logical);
      await mkdir(path.dirname(final), { recursive: true });
      // The data is durable before the rename, so the name can only ever show whole content.
      // The directory is not fsynced: a crash may lose a very recent rename (the object is then
      // simply missing and fetched again), and journaling filesystems commit renames in order,
      // so a link can never survive a crash that lost the blob it names.
      await rename(this.tmpPath, final);
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  async abort(): Promise<void> {
    // A batch still being written finishes first: its descriptor is closed below.
    if (this.#inFlight) await this.#inFlight;
    if (!this.#done) {
      this.#done = true;
      if (!this.#sealed) await this.fh.close().catch(() => undefined);
    }
    this.#pending = [];
    await rm(this.tmpPath, { force: true }).catch(() => undefined);
  }
}

/**
 * The default driver: a directory on a local filesystem. Temp files live under `.airlock/tmp` in
 * the same root, so rename(2) is atomic and nothing half-written ever appears under a final path.
 */
export class FilesystemDriver implements StorageDriver {
  readonly kind = 'filesystem';
  readonly root: string;
  readonly #tmpDir: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    // One temp directory per process, so a job started beside a running serve (prefetch,
    // import) never has its temp files removed by the other's start-up clean-up.
    this.#tmpDir = path.join(this.root, ...TMP.split('/'), String(process.pid));
  }

  /**
   * Removes what killed processes left in the temp area: every per-process directory whose
   * process is gone (and stray files). Nothing there is ever named by a link.
   */
  async cleanTemp(): Promise<void> {
    const base = path.join(this.root, ...TMP.split('/'));
    let names: string[];
    try {
      names = await readdir(base);
    } catch (e) {
      if (isNotFound(e)) return;
      throw e;
    }
    for (const n of names) {
      if (/^\d+$/.test(n) && isAlive(Number(n))) continue;
      await rm(path.join(base, n), { recursive: true, force: true });
    }
  }

  /** Logical path → absolute path, refusing anything that would leave the root. */
  resolve(logical: string): string {
    if (logical.includes('\0') || logical.startsWith('/') || logical.split('/').some((c) => c === '..' || c === '.')) {
      throw new Error(`refusing storage path ${JSON.stringify(logical)}`);
    }
    const abs = path.join(this.root, ...logical.split('/'));
    if (abs !== this.root && !abs.startsWith(this.root + path.sep)) throw new Error(`storage path escapes the root: ${logical}`);
    return abs;
  }

  get tmpDir(): string {
    return this.#tmpDir;
  }

  async stat(logical: string): Promise<FileInfo | undefined> {
    try {
      const s = await stat(this.resolve(logical));
      return { size: s.size, modTime: s.mtime, isDirectory: s.isDirectory() };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async readFile(logical: string, maxBytes: number): Promise<Buffer | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(this.resolve(logical), 'r');
    } catch (e) {
      if (isNotFound(e)) return undefined;
      if ((e as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
      throw e;
    }
    try {
      const { size } = await fh.stat();
      if (size > maxBytes) throw new FileTooLargeError(logical, size, maxBytes);
      const buf = Buffer.allocUnsafe(size);
      let off = 0;
      while (off < size) {
        const { bytesRead } = await fh.read(buf, off, size - off, off);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      return off === size ? buf : buf.subarray(0, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
      throw e;
    } finally {
      await fh.close();
    }
  }

  async readStream(logical: string, range?: { start: number; end: number }): Promise<Readable | undefined> {
    // Open first so a missing file is an undefined here, not an error event mid-response.
    const fh = await openIfExists(this.resolve(logical), 'r');
    if (!fh) return undefined;
    // The stream owns the FileHandle and closes it on end, error or destroy.
    return new FileStream(fh, range?.start ?? 0, range?.end);
  }

  openReader(logical: string): Promise<PositionalReader | undefined> {
    return this.openReaderAt(this.resolve(logical));
  }

  /** A positional reader of a real path (a store file or a staged temp file). */
  async openReaderAt(file: string): Promise<PositionalReader | undefined> {
    const fh = await openIfExists(file, 'r');
    if (!fh) return undefined;
    return { read: async (buf, position) => (await fh.read(buf, 0, buf.length, position)).bytesRead, close: () => fh.close() };
  }

  async writeFile(logical: string, data: Uint8Array | string): Promise<void> {
    const w = await this.stage();
    try {
      await w.write(typeof data === 'string' ? Buffer.from(data) : data);
    } catch (e) {
      await w.abort();
      throw e;
    }
    await w.commit(logical);
  }

  async createExclusive(logical: string, data: Uint8Array | string): Promise<boolean> {
    // Staged and then linked (not renamed): link(2) fails with EEXIST instead of replacing, so
    // the file appears whole or not at all.
    const w = await this.stage();
    try {
      await w.write(typeof data === 'string' ? Buffer.from(data) : data);
      await w.seal();
      const final = this.resolve(logical);
      await mkdir(path.dirname(final), { recursive: true });
      try {
        await link((w as FileStagedWrite).tmpPath, final);
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw e;
      }
    } finally {
      await w.abort();
    }
  }

  async stage(): Promise<StagedWrite> {
    await mkdir(this.#tmpDir, { recursive: true });
    const tmp = path.join(this.#tmpDir, `${Date.now()}-${randomBytes(8).toString('hex')}`);
    const fh = await open(tmp, 'wx', 0o644);
    return new FileStagedWrite(fh, tmp, this);
  }

  async list(logical: string): Promise<string[] | undefined> {
    try {
      const names = await readdir(this.resolve(logical));
      return names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async move(from: string, to: string): Promise<void> {
    const dest = this.resolve(to);
    await mkdir(path.dirname(dest), { recursive: true });
    await rename(this.resolve(from), dest);
  }

  async delete(logical: string): Promise<void> {
    await rm(this.resolve(logical), { recursive: true, force: true });
  }

  async append(logical: string, source: AsyncIterable<Uint8Array>, expectedSize?: number): Promise<number | undefined> {
    const fh = await openIfExists(this.resolve(logical), 'r+');
    if (!fh) return undefined;
    try {
      const { size } = await fh.stat();
      if (expectedSize !== undefined && size !== expectedSize) throw new AppendOffsetError(logical, size, expectedSize);
      let pos = size;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      try {
        for await (const chunk of source) {
          pending.push(asBuffer(chunk));
          pendingBytes += chunk.byteLength;
          if (pendingBytes >= WRITE_BUFFER) {
            await writevAll(fh, pending, pendingBytes, pos);
            pos += pendingBytes;
            pending = [];
            pendingBytes = 0;
          }
        }
        if (pendingBytes > 0) await writevAll(fh, pending, pendingBytes, pos);
        return pos + pendingBytes;
      } catch (e) {
        // All or nothing: a broken body leaves the file as it was, so the client can resend.
        await fh.truncate(size).catch(() => undefined);
        throw e;
      }
    } finally {
      await fh.close();
    }
  }

  async sync(logical: string): Promise<void> {
    const fh = await open(this.resolve(logical), 'r+');
    try {
      await fh.datasync();
    } finally {
      await fh.close();
    }
  }

  async deleteFile(logical: string): Promise<void> {
    try {
      await unlink(this.resolve(logical));
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  async deleteEmptyDirectory(logical: string): Promise<void> {
    try {
      await rmdir(this.resolve(logical));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (!isNotFound(e) && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    }
  }

  async touch(logical: string): Promise<boolean> {
    const now = new Date();
    try {
      await utimes(this.resolve(logical), now, now);
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }
}
