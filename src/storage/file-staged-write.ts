import { mkdir, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { PositionalReader, StagedWrite } from './driver.js';
import { asBuffer, WRITE_BUFFER, writevAll } from './writev-all.js';

/** What a staged write asks of its driver: where a logical path lives, and a reader of a real path. */
interface StagingDriver {
  resolve(logical: string): string;
  openReaderAt(file: string): Promise<PositionalReader | undefined>;
}

/**
 * Bytes are gathered up to WRITE_BUFFER and written with one writev in the background (write
 * behind): the caller goes on receiving while the previous batch is on its way to the file, and
 * waits only when a second batch is full before the first is written (memory: two batches).
 */
export class FileStagedWrite implements StagedWrite {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #written = 0;
  #inFlight: Promise<void> | undefined;
  #inFlightBytes = 0;
  /** A background write failed: every later call fails with it. */
  #failed: Error | undefined;
  #done = false;
  #sealed = false;

  constructor(private readonly fh: FileHandle, readonly tmpPath: string, private readonly driver: StagingDriver) {}

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
