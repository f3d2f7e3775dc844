/**
 * The storage driver: the small interface between the registry store and a medium.
 * The filesystem driver is the default; an object-store driver implements the same calls
 * (commit-by-rename becomes commit-by-completing-a-multipart-upload).
 *
 * Paths are logical: '/'-separated, relative to the storage root, never starting with '/'.
 */
import type { Readable } from 'node:stream';

export interface FileInfo {
  size: number;
  modTime: Date;
  isDirectory: boolean;
}

/** A write in progress: invisible under any final path until commit() returns. */
export interface StagedWrite {
  /** Appends bytes. Resolves when the driver has taken them (may buffer). */
  write(chunk: Uint8Array): Promise<void>;
  readonly bytesWritten: number;
  /** Writes buffered bytes through to the medium, so readers see them. */
  flush(): Promise<void>;
  /**
   * Makes the bytes durable and releases what the write holds open (a descriptor), for callers
   * that stage many objects before committing them together (bundle import). Only commit() or
   * abort() may follow.
   */
  seal(): Promise<void>;
  /** Flushes, makes durable and atomically publishes the bytes under `path` (replacing any file there). */
  commit(path: string): Promise<void>;
  /** Discards everything written; safe to call more than once and after a failed commit. */
  abort(): Promise<void>;
  /**
   * A reader of the bytes written so far (and, once committed, of the whole object), so that
   * other clients can follow a fill as it grows. Undefined once the write is gone (aborted, or
   * committed and moved: read the final object then). Only flushed bytes are readable: see
   * `bytesReadable`.
   */
  openReader(): Promise<PositionalReader | undefined>;
  /** How many bytes a reader can read now (written through to the medium). */
  readonly bytesReadable: number;
  /**
   * Names the path commit() will most likely publish to, before the bytes are all there: an
   * object store then uploads into that key while the write runs (still invisible until commit).
   */
  target?(path: string): void;
}

/** Reads at any offset (a staged write as it grows, a stored file). */
export interface PositionalReader {
  /** Reads into `buf` from `position`; resolves with the bytes read (0 at the current end). */
  read(buf: Buffer, position: number): Promise<number>;
  close(): Promise<void>;
}

export interface StorageDriver {
  readonly kind: string;
  stat(path: string): Promise<FileInfo | undefined>;
  /** The whole content of a small file; undefined when missing. Refuses files larger than maxBytes. */
  readFile(path: string, maxBytes: number): Promise<Buffer | undefined>;
  /** A stream of the file (or of the inclusive byte range); undefined when missing. */
  readStream(path: string, range?: { start: number; end: number }): Promise<Readable | undefined>;
  /** A positional reader of the file; undefined when missing. */
  openReader(path: string): Promise<PositionalReader | undefined>;
  /** Atomically replaces the file's content (temp, fsync, rename). */
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
  /** A staged write for large content. */
  stage(): Promise<StagedWrite>;
  /** Names directly under a directory, sorted by code unit; undefined when it does not exist. */
  list(path: string): Promise<string[] | undefined>;
  /** Renames a file or directory within the store (replacing nothing: the target must not exist). */
  move(from: string, to: string): Promise<void>;
  /** Removes a file or a whole directory tree; missing is not an error. */
  delete(path: string): Promise<void>;
  /**
   * Appends a stream to an existing file, all or nothing: if the stream fails, the file is cut
   * back to its size before. With `expectedSize`, refuses (AppendOffsetError) unless the file
   * has exactly that size. Resolves with the new size; undefined when the file is missing.
   */
  append(path: string, source: AsyncIterable<Uint8Array>, expectedSize?: number): Promise<number | undefined>;
  /** Makes a file's content durable (before a move publishes it). */
  sync(path: string): Promise<void>;
  /** Removes one file (unlink); missing is not an error. */
  deleteFile(path: string): Promise<void>;
  /** Removes a directory if it is empty; missing or not empty is not an error. */
  deleteEmptyDirectory(path: string): Promise<void>;
  /** Sets a file's modification time to now; false when it is missing. */
  touch(path: string): Promise<boolean>;
  /**
   * Writes a small file only if none exists under the path (an object store's If-None-Match: *,
   * a filesystem's O_EXCL): true when this call created it. Replicas coordinate through it.
   */
  createExclusive(path: string, data: Uint8Array | string): Promise<boolean>;
  /**
   * Discards writes started before `before` that never completed (an object store's multipart
   * uploads left by a killed process; a filesystem's temp files are cleaned at start instead).
   * Resolves with how many were discarded.
   */
  sweepUnfinished?(before: Date, live?: (path: string) => Promise<boolean>): Promise<number>;
  /** Releases connections (an object store's client). */
  close?(): void;
  /** A time-limited URL to GET the file without credentials, where the medium has one (S3). */
  presign?(path: string, seconds: number): Promise<string>;
}

/** An append found the file at another size than the writer expected. */
export class AppendOffsetError extends Error {
  constructor(readonly path: string, readonly size: number, readonly expected: number) {
    super(`${path} holds ${size} bytes, not the ${expected} expected`);
    this.name = 'AppendOffsetError';
  }
}

/** A file turned out bigger than a caller allowed. */
export class FileTooLargeError extends Error {
  constructor(readonly path: string, readonly size: number, readonly limit: number) {
    super(`${path} is ${size} bytes, more than the ${limit} allowed`);
    this.name = 'FileTooLargeError';
  }
}
