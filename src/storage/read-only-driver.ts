/**
 * A store served as it is (storage.readOnly, or a root found read-only at start): every read goes
 * to the medium, every write is refused before it reaches it. The serving and job code paths do
 * not write in this mode in the first place (app/compose.ts turns them off); this wrapper is the
 * guarantee that a path they missed fails with one clear error instead of creating anything.
 */
import type { Readable } from 'node:stream';
import { UnsupportedError } from '../oci/errors.js';
import type { FileInfo, PositionalReader, StagedWrite, StorageDriver } from './driver.js';

/**
 * A write refused because the store is read-only: an API answer of 405 UNSUPPORTED (what
 * Distribution's read-only maintenance mode answers for a write), a CLI refusal (exit 2).
 */
export class ReadOnlyStoreError extends UnsupportedError {}

/** Why a store is served read-only, for every message that refuses a write. */
export interface ReadOnlyReason {
  /** Where the store is (its root, s3://bucket/prefix). */
  label: string;
  /** `storage.readOnly: true`, or what the start-up check found (EROFS, not writable). */
  why: string;
}

/** `the store at /srv/store is read-only (storage.readOnly: true): <what>`. */
export function readOnlyMessage(reason: ReadOnlyReason, what: string): string {
  return `the store at ${reason.label} is read-only (${reason.why}): ${what}`;
}

export class ReadOnlyDriver implements StorageDriver {
  readonly kind: string;
  /** Only where the medium has presigned URLs (storage.redirect still works: it reads). */
  readonly presign?: (path: string, seconds: number) => Promise<string>;

  constructor(private readonly inner: StorageDriver, readonly reason: ReadOnlyReason) {
    this.kind = inner.kind;
    const presign = inner.presign?.bind(inner);
    if (presign) this.presign = presign;
  }

  #refuse(op: string, path?: string): never {
    throw new ReadOnlyStoreError(readOnlyMessage(this.reason, `${op}${path === undefined ? '' : ` of ${path}`} refused`));
  }

  stat(path: string): Promise<FileInfo | undefined> {
    return this.inner.stat(path);
  }

  readFile(path: string, maxBytes: number): Promise<Buffer | undefined> {
    return this.inner.readFile(path, maxBytes);
  }

  readStream(path: string, range?: { start: number; end: number }): Promise<Readable | undefined> {
    return this.inner.readStream(path, range);
  }

  openReader(path: string): Promise<PositionalReader | undefined> {
    return this.inner.openReader(path);
  }

  list(path: string): Promise<string[] | undefined> {
    return this.inner.list(path);
  }

  close(): void {
    this.inner.close?.();
  }

  // Everything below would change the medium.
  async writeFile(path: string): Promise<void> {
    this.#refuse('a write', path);
  }

  async stage(): Promise<StagedWrite> {
    this.#refuse('a staged write');
  }

  async move(from: string): Promise<void> {
    this.#refuse('a move', from);
  }

  async delete(path: string): Promise<void> {
    this.#refuse('a delete', path);
  }

  async append(path: string): Promise<number | undefined> {
    this.#refuse('an append', path);
  }

  async sync(path: string): Promise<void> {
    this.#refuse('a sync', path);
  }

  async deleteFile(path: string): Promise<void> {
    this.#refuse('a delete', path);
  }

  async deleteEmptyDirectory(path: string): Promise<void> {
    this.#refuse('a delete', path);
  }

  async touch(path: string): Promise<boolean> {
    this.#refuse('a touch', path);
  }

  async createExclusive(path: string): Promise<boolean> {
    this.#refuse('a write', path);
  }

  async sweepUnfinished(): Promise<number> {
    this.#refuse('a sweep of unfinished uploads');
  }
}
