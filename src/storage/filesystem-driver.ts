import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, rename, rm, rmdir, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { FileInfo, PositionalReader, StagedWrite, StorageDriver } from './driver.js';
import { appendToFile } from './file-append.js';
import { FileStagedWrite } from './file-staged-write.js';
import { FileStream } from './file-stream.js';
import { isNotFound, openIfExists } from './open-if-exists.js';
import { TMP } from './paths.js';
import { readWholeFile } from './read-whole-file.js';
import { removeStaleTemp } from './stale-temp.js';

/**
 * The default driver: a directory on a local filesystem. Temp files live under `.airlock/tmp` in
 * the same root, so rename(2) is atomic and nothing half-written ever appears under a final path.
 * Its parts by role: file-staged-write (temp file, fsync, rename), file-stream and
 * read-whole-file (reads), file-append, stale-temp (the start-up walk of the temp area).
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
    await removeStaleTemp(path.join(this.root, ...TMP.split('/')));
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
    return readWholeFile(this.resolve(logical), logical, maxBytes);
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
    return appendToFile(this.resolve(logical), logical, source, expectedSize);
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
