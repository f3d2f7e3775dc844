import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { PositionalReader, StagedWrite } from './driver.js';
import { readFully } from './read-fully.js';
import type { S3Bucket } from './s3-bucket.js';
import { MultipartWriter } from './s3-multipart-writer.js';

/** Parts of one staged object uploaded at once. */
const PART_CONCURRENCY = 4;

/**
 * A staged object: spooled to a local file (readers follow it there), and, once target() names
 * its final key, uploaded from the spool part by part while it grows. commit() uploads the rest
 * and completes the upload; until then the key shows nothing new.
 */
export class S3StagedWrite implements StagedWrite {
  #upload: MultipartWriter | undefined;
  /** Bytes of the spool handed to part uploads so far. */
  #queued = 0;
  readonly #running = new Set<Promise<void>>();
  #failed: Error | undefined;
  #reader: Promise<PositionalReader | undefined> | undefined;
  #done = false;

  constructor(private readonly spool: StagedWrite, private readonly driver: S3Bucket) {}

  get bytesWritten(): number {
    return this.spool.bytesWritten;
  }

  get bytesReadable(): number {
    return this.spool.bytesReadable;
  }

  openReader(): Promise<PositionalReader | undefined> {
    return this.spool.openReader();
  }

  /** Names the final key early, so the upload runs beside the fill instead of after it. */
  target(logical: string): void {
    if (this.#upload || this.#done) return;
    this.#upload = new MultipartWriter(this.driver, this.driver.key(logical));
    this.#pump();
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#failed) throw this.#failed;
    await this.spool.write(chunk);
    // No back-pressure on the writer: the spool (on disk) may run ahead of the object store,
    // and the part uploads (PART_CONCURRENCY × partSize of memory) catch up before commit.
    this.#pump();
  }

  async flush(): Promise<void> {
    await this.spool.flush();
    this.#pump();
  }

  /** Starts uploads of the whole parts the spool holds now. */
  #pump(): void {
    const up = this.#upload;
    if (!up || this.#failed || this.#done) return;
    const size = this.driver.config.partSize;
    while (this.spool.bytesReadable - this.#queued >= size && this.#running.size < PART_CONCURRENCY) {
      const at = this.#queued;
      this.#queued += size;
      this.#startPart(up, at, size);
    }
  }

  #startPart(up: MultipartWriter, at: number, size: number): void {
    const p = (async () => {
      // One reader for every part (parts start several in a tick: share the open, not race it).
      this.#reader ??= this.spool.openReader();
      const reader = await this.#reader;
      if (!reader) throw new Error('the spool file is gone');
      const buf = Buffer.allocUnsafe(size);
      await readFully(reader, buf, at);
      await up.part(buf, Math.floor(at / this.driver.config.partSize) + 1);
    })().catch((e: unknown) => {
      this.#failed ??= e instanceof Error ? e : new Error(String(e));
    });
    this.#running.add(p);
    void p.finally(() => {
      this.#running.delete(p);
      this.#pump();
    });
  }

  async #drain(): Promise<void> {
    while (this.#running.size > 0) await Promise.race(this.#running);
    if (this.#failed) throw this.#failed;
  }

  async seal(): Promise<void> {
    // Closes the spool's descriptor: an import stages many objects before committing them.
    await this.spool.seal();
  }

  async commit(logical: string): Promise<void> {
    if (this.#done) throw new Error('commit after commit or abort');
    try {
      await this.spool.flush();
      const key = this.driver.key(logical);
      const total = this.spool.bytesReadable;
      if (this.#upload && this.#upload.key !== key) {
        await this.#drain().catch(() => undefined);
        await this.#upload.abort();
        this.#upload = undefined;
        this.#queued = 0;
        this.#failed = undefined;
      }
      if (!this.#upload?.started && total <= this.driver.config.partSize) {
        await this.#upload?.abort();
        // Small objects: one PUT.
        const buf = Buffer.allocUnsafe(total);
        const r = (await this.spool.openReader())!;
        try {
          if (total > 0) await readFully(r, buf, 0);
        } finally {
          await r.close();
        }
        await this.driver.client.send(new PutObjectCommand({ Bucket: this.driver.bucket, Key: key, Body: buf, ContentLength: total }));
      } else {
        this.#upload ??= new MultipartWriter(this.driver, key);
        const up = this.#upload;
        this.#pump();
        for (;;) {
          await this.#drain();
          const left = total - this.#queued;
          if (left <= 0) break;
          if (left <= this.driver.config.partSize) {
            this.#queued = total;
            this.#startPart(up, total - left, left);
          } else {
            this.#pump();
          }
        }
        await this.#drain();
        await up.complete();
      }
      this.#done = true;
      await this.#cleanup();
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  async #cleanup(): Promise<void> {
    const r = this.#reader;
    this.#reader = undefined;
    await (await r?.catch(() => undefined))?.close().catch(() => undefined);
    await this.spool.abort();
  }

  async abort(): Promise<void> {
    this.#done = true;
    // #pump starts nothing once #done is set; wait for every part still on its way.
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
    await this.#upload?.abort();
    this.#upload = undefined;
    await this.#cleanup();
  }
}
