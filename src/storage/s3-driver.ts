/**
 * The object-store driver: the standard layout as keys under `<prefix>/` in one S3 bucket, so
 * Distribution's own `s3` storage driver (`rootdirectory: <prefix>`) serves the bucket as is.
 *
 * S3 has no rename, so nothing is committed by renaming:
 * - a staged write is spooled to a local file (followers of a fill read it as it grows) and, once
 *   its final key is known, streamed from there into a multipart upload on that key; the upload
 *   is completed only by commit(), which the caller reaches after verifying digest and size, and
 *   aborted otherwise, so an unverified object is never visible;
 * - small files (links, manifests) are single PUTs, atomic by nature;
 * - an append (a chunked push) replaces the object with a multipart upload of the old object
 *   (copied server-side) and the new bytes, all or nothing.
 * Directories are key prefixes: listed with a delimiter, page by page.
 *
 * This class is the StorageDriver; its parts are by role: s3-client (configuration, SDK client),
 * s3-staged-write and s3-multipart-writer (staged writes), s3-append, s3-object-stream, s3-reader
 * and s3-read-object (reads), s3-listing and s3-tree (listings, moves, deletes), s3-copy,
 * s3-presign and s3-sweep.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { CopyObjectCommand, DeleteObjectCommand, HeadBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { largeReadConnector } from '../runtime/large-reads.js';
import { Agent as UndiciAgent } from '../runtime/undici.js';
import type { FileInfo, PositionalReader, StagedWrite, StorageDriver } from './driver.js';
import { FilesystemDriver } from './filesystem-driver.js';
import { appendObject } from './s3-append.js';
import { headObject, type S3Bucket } from './s3-bucket.js';
import { createS3Client, type S3DriverConfig } from './s3-client.js';
import { copySource, MAX_COPY } from './s3-copy.js';
import { isNotFound, isPreconditionFailed } from './s3-errors.js';
import { directoryInfo, listNames } from './s3-listing.js';
import { readObjectStream } from './s3-object-stream.js';
import { presignGet, ReadUrls } from './s3-presign.js';
import { readObject } from './s3-read-object.js';
import { S3Reader } from './s3-reader.js';
import { S3StagedWrite } from './s3-staged-write.js';
import { sweepUnfinishedUploads } from './s3-sweep.js';
import { deleteTree, moveTree } from './s3-tree.js';

export type { S3DriverConfig } from './s3-client.js';

export class S3Driver implements StorageDriver, S3Bucket {
  readonly kind = 's3';
  readonly client: S3Client;
  /** Local spool for staged writes (one directory per process, cleaned at start). */
  readonly spool: FilesystemDriver;
  /** Connections for object bodies (readStream). */
  readonly #http = new UndiciAgent({ keepAliveTimeout: 30_000, connect: largeReadConnector({ timeout: 10_000 }), headersTimeout: 60_000, bodyTimeout: 120_000 });
  readonly #readUrls = new ReadUrls(this);

  constructor(readonly config: S3DriverConfig, spoolRoot: string) {
    this.client = createS3Client(config);
    this.spool = new FilesystemDriver(spoolRoot);
  }

  close(): void {
    this.client.destroy();
    void this.#http.close();
  }

  get bucket(): string {
    return this.config.bucket;
  }

  key(logical: string): string {
    if (logical.includes('\0') || logical.startsWith('/') || logical.split('/').some((c) => c === '..' || c === '.')) {
      throw new Error(`refusing storage path ${JSON.stringify(logical)}`);
    }
    const prefix = this.config.prefix;
    if (!logical) return prefix;
    return prefix ? `${prefix}/${logical}` : logical;
  }

  /** The bucket answers and takes writes (start-up check): one PUT and DELETE of a probe object. */
  async check(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    const probe = `.airlock/probe-${randomBytes(6).toString('hex')}`;
    await this.writeFile(probe, 'probe');
    await this.deleteFile(probe);
  }

  async stat(logical: string): Promise<FileInfo | undefined> {
    const h = logical ? await headObject(this, logical) : undefined;
    if (h) return { size: h.size, modTime: h.modTime, isDirectory: false };
    return directoryInfo(this, logical);
  }

  readFile(logical: string, maxBytes: number): Promise<Buffer | undefined> {
    return readObject(this, logical, maxBytes);
  }

  /** Blob bodies: through undici, not the SDK (see s3-object-stream.ts). */
  readStream(logical: string, range?: { start: number; end: number }): Promise<Readable | undefined> {
    return readObjectStream(this, this.#readUrls, this.#http, logical, range);
  }

  async openReader(logical: string): Promise<PositionalReader | undefined> {
    const h = await headObject(this, logical);
    if (!h) return undefined;
    return new S3Reader(this, logical, h.size);
  }

  /** A time-limited URL that GETs the object without credentials (storage.redirect). */
  presign(logical: string, seconds: number): Promise<string> {
    return presignGet(this, this.key(logical), seconds);
  }

  async writeFile(logical: string, data: Uint8Array | string): Promise<void> {
    const body = typeof data === 'string' ? Buffer.from(data) : data;
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key(logical), Body: body, ContentLength: body.byteLength }));
  }

  /** Writes the object only if no object has the key (If-None-Match: *): false when one had. */
  async createExclusive(logical: string, data: Uint8Array | string): Promise<boolean> {
    const body = typeof data === 'string' ? Buffer.from(data) : data;
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key(logical), Body: body, ContentLength: body.byteLength, IfNoneMatch: '*' }));
      return true;
    } catch (e) {
      if (isPreconditionFailed(e)) return false;
      throw e;
    }
  }

  async stage(): Promise<StagedWrite> {
    return new S3StagedWrite(await this.spool.stage(), this);
  }

  list(logical: string): Promise<string[] | undefined> {
    return listNames(this, logical);
  }

  move(from: string, to: string): Promise<void> {
    return moveTree(this, from, to);
  }

  delete(logical: string): Promise<void> {
    return deleteTree(this, logical);
  }

  append(logical: string, source: AsyncIterable<Uint8Array>, expectedSize?: number): Promise<number | undefined> {
    return appendObject(this, this.spool, logical, source, expectedSize);
  }

  /** Aborts airlock's own multipart uploads into blob keys left by killed processes (see s3-sweep.ts). */
  sweepUnfinished(before: Date, live?: (path: string) => Promise<boolean>): Promise<number> {
    return sweepUnfinishedUploads(this, before, live);
  }

  async sync(): Promise<void> {
    // A completed PUT is durable.
  }

  async deleteFile(logical: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(logical) }));
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  async deleteEmptyDirectory(): Promise<void> {
    // Prefixes vanish with their last key.
  }

  async touch(logical: string): Promise<boolean> {
    const h = await headObject(this, logical);
    if (!h) return false;
    // A copy onto itself with new metadata is S3's only way to renew LastModified (gc's grace
    // period reads it). Above the single-copy limit the time stays: such blobs are rare, and gc's
    // grace period is measured from their upload.
    if (h.size > MAX_COPY) return true;
    const key = this.key(logical);
    try {
      await this.client.send(new CopyObjectCommand({
        Bucket: this.bucket, Key: key, CopySource: copySource(this.bucket, key),
        MetadataDirective: 'REPLACE', Metadata: { 'airlock-touched': new Date().toISOString() },
      }));
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
    return true;
  }
}

