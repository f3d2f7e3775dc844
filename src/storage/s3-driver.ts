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
 */
import { randomBytes } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent as UndiciAgent, requestUrl, type Dispatcher } from '../runtime/undici.js';
import { AppendOffsetError, FileTooLargeError, type FileInfo, type PositionalReader, type StagedWrite, type StorageDriver } from './driver.js';
import { FilesystemDriver } from './filesystem-driver.js';
import { BLOBS } from './paths.js';

export interface S3DriverConfig {
  /** http(s)://host:port of an S3 API (radosgw, MinIO, AWS); empty for AWS's own. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Key prefix of the layout (Distribution's `rootdirectory`), without leading or trailing '/'. */
  prefix: string;
  accessKey?: string;
  secretKey?: string;
  forcePathStyle: boolean;
  /** Multipart part size (≥ 5 MiB). */
  partSize: number;
}

/** S3's smallest part but the last, and its largest single copy. */
const MIN_PART = 5 << 20;
const MAX_COPY = 5 * 2 ** 30;
/** Parts of one staged object uploaded at once. */
const PART_CONCURRENCY = 4;

function statusOf(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function isNotFound(e: unknown): boolean {
  const name = (e as Error).name;
  return statusOf(e) === 404 || name === 'NoSuchKey' || name === 'NotFound';
}

/** A conditional write lost: the object is there already (412), or a racing write is (409). */
function isPreconditionFailed(e: unknown): boolean {
  const s = statusOf(e);
  return s === 412 || s === 409 || (e as Error).name === 'PreconditionFailed';
}

async function readAll(body: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > limit) {
      body.destroy();
      throw new FileTooLargeError(what, n, limit);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks, n);
}

export class S3Driver implements StorageDriver {
  readonly kind = 's3';
  readonly client: S3Client;
  /** Local spool for staged writes (one directory per process, cleaned at start). */
  readonly spool: FilesystemDriver;
  /** Connections for object bodies (readStream). */
  readonly #http = new UndiciAgent({ keepAliveTimeout: 30_000, connect: { timeout: 10_000 }, headersTimeout: 60_000, bodyTimeout: 120_000 });

  constructor(readonly config: S3DriverConfig, spoolRoot: string) {
    // The SDK warns on Node 20 (multi-line, on stderr, at every command) that its releases after
    // January 2027 will need Node 22. package.json pins a release that supports Node 20; the
    // warning is about future upgrades, which the README's dependency table notes.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const keepAlive = { keepAlive: true, maxSockets: 256 };
    this.client = new S3Client({
      endpoint: config.endpoint || undefined,
      region: config.region,
      forcePathStyle: config.forcePathStyle,
      credentials: config.accessKey && config.secretKey ? { accessKeyId: config.accessKey, secretAccessKey: config.secretKey } : undefined,
      // Checksums only where S3 requires them: object stores other than AWS (radosgw, older
      // MinIO) refuse the newer default trailing checksums; digests are verified by airlock.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 4,
      requestHandler: new NodeHttpHandler({ httpAgent: new HttpAgent(keepAlive), httpsAgent: new HttpsAgent(keepAlive), connectionTimeout: 10_000, requestTimeout: 120_000 }),
    });
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

  async #head(logical: string): Promise<{ size: number; modTime: Date; etag?: string } | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(logical) }));
      return { size: r.ContentLength ?? 0, modTime: r.LastModified ?? new Date(0), etag: r.ETag };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async stat(logical: string): Promise<FileInfo | undefined> {
    const h = logical ? await this.#head(logical) : undefined;
    if (h) return { size: h.size, modTime: h.modTime, isDirectory: false };
    // A "directory" is a prefix with at least one key under it.
    const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.#dirPrefix(logical), MaxKeys: 1 }));
    const first = r.Contents?.[0];
    if (!first) return undefined;
    return { size: 0, modTime: first.LastModified ?? new Date(0), isDirectory: true };
  }

  #dirPrefix(logical: string): string {
    const k = this.key(logical);
    return k ? `${k}/` : '';
  }

  async readFile(logical: string, maxBytes: number): Promise<Buffer | undefined> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(logical) }));
      const body = r.Body as Readable;
      if ((r.ContentLength ?? 0) > maxBytes) {
        body.destroy();
        throw new FileTooLargeError(logical, r.ContentLength ?? 0, maxBytes);
      }
      return await readAll(body, maxBytes, logical);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /**
   * Blob bodies are read with undici from a URL the SDK presigned (signing is local): the SDK's
   * own Node handler moved bytes markedly slower on the warm path (6 concurrent 64 MiB GETs
   * through airlock: 1.2–1.4 s with it, against 0.7 s straight from the object store).
   */
  async readStream(logical: string, range?: { start: number; end: number }): Promise<Readable | undefined> {
    const key = this.key(logical);
    for (let attempt = 0; ; attempt++) {
      const url = await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn: 600 });
      let res: Dispatcher.ResponseData;
      try {
        res = await requestUrl(this.#http, url, { headers: range ? { range: `bytes=${range.start}-${range.end}` } : {} });
      } catch (e) {
        if (attempt < 2) continue;
        throw e;
      }
      if (res.statusCode === 206 || (res.statusCode === 200 && (!range || (range.start === 0 && Number(res.headers['content-length']) === range.end + 1)))) return res.body;
      if (res.statusCode === 200) {
        // A store that ignored the Range: its bytes would start at 0, not where we asked.
        res.body.destroy();
        throw new Error(`the object store ignored the range of GET ${key}`);
      }
      const text = (await res.body.text().catch(() => '')).slice(0, 300);
      if (res.statusCode === 404 || res.statusCode === 416) return undefined;
      if (res.statusCode >= 500 && attempt < 2) continue;
      throw new Error(`the object store answered ${res.statusCode} to GET ${key}: ${text}`);
    }
  }

  async openReader(logical: string): Promise<PositionalReader | undefined> {
    const h = await this.#head(logical);
    if (!h) return undefined;
    return new S3Reader(this, logical, h.size);
  }

  /** A time-limited URL that GETs the object without credentials (storage.redirect). */
  presign(logical: string, seconds: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.key(logical) }), { expiresIn: seconds });
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

  async list(logical: string): Promise<string[] | undefined> {
    const prefix = this.#dirPrefix(logical);
    const names = new Set<string>();
    let token: string | undefined;
    do {
      const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
      for (const cp of r.CommonPrefixes ?? []) if (cp.Prefix) names.add(cp.Prefix.slice(prefix.length, -1));
      for (const o of r.Contents ?? []) if (o.Key && o.Key.length > prefix.length) names.add(o.Key.slice(prefix.length));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    if (names.size === 0) return undefined;
    return [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Every key under a directory, page by page (for move and delete of a tree). */
  async *#keysUnder(logical: string): AsyncGenerator<{ key: string; size: number }> {
    const prefix = this.#dirPrefix(logical);
    let token: string | undefined;
    do {
      const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of r.Contents ?? []) if (o.Key) yield { key: o.Key, size: o.Size ?? 0 };
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  }

  /** Server-side copy of one object (in parts above S3's 5 GiB single-copy limit). */
  async #copy(fromKey: string, toKey: string, size: number): Promise<void> {
    const source = copySource(this.bucket, fromKey);
    if (size <= MAX_COPY) {
      await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: toKey, CopySource: source }));
      return;
    }
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: toKey }));
    try {
      const parts: CompletedPart[] = [];
      const step = copyStep(size);
      for (let at = 0, n = 1; at < size; at += step, n++) {
        const r = await this.client.send(new UploadPartCopyCommand({
          Bucket: this.bucket, Key: toKey, UploadId, PartNumber: n, CopySource: source,
          CopySourceRange: `bytes=${at}-${Math.min(size, at + step) - 1}`,
        }));
        parts.push({ PartNumber: n, ETag: r.CopyPartResult?.ETag });
      }
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: toKey, UploadId, MultipartUpload: { Parts: parts } }));
    } catch (e) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: toKey, UploadId })).catch(() => undefined);
      throw e;
    }
  }

  async move(from: string, to: string): Promise<void> {
    const h = await this.#head(from);
    if (h) {
      await this.#copy(this.key(from), this.key(to), h.size);
      await this.deleteFile(from);
      return;
    }
    const fromPrefix = this.#dirPrefix(from);
    const toPrefix = this.#dirPrefix(to);
    let moved = 0;
    for await (const o of this.#keysUnder(from)) {
      await this.#copy(o.key, toPrefix + o.key.slice(fromPrefix.length), o.size);
      moved++;
    }
    if (moved === 0) throw Object.assign(new Error(`no such file or directory: ${from}`), { code: 'ENOENT' });
    await this.delete(from);
  }

  async delete(logical: string): Promise<void> {
    if (logical) await this.deleteFile(logical);
    let batch: string[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const r = await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
      batch = [];
      const failed = (r.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) throw new Error(`the object store did not delete ${failed.length} objects (first: ${failed[0]!.Key}: ${failed[0]!.Code} ${failed[0]!.Message ?? ''})`);
    };
    for await (const o of this.#keysUnder(logical)) {
      batch.push(o.key);
      if (batch.length === 1000) await flush();
    }
    await flush();
  }

  async append(logical: string, source: AsyncIterable<Uint8Array>, expectedSize?: number): Promise<number | undefined> {
    const h = await this.#head(logical);
    if (!h) return undefined;
    if (expectedSize !== undefined && h.size !== expectedSize) throw new AppendOffsetError(logical, h.size, expectedSize);
    // The new bytes are spooled first: their length is then known, and a broken body leaves the
    // object as it was (all or nothing, as the filesystem driver's truncate).
    const spool = await this.spool.stage();
    try {
      const copyOld = h.size >= MIN_PART;
      if (!copyOld && h.size > 0) {
        const old = await this.readFile(logical, MIN_PART);
        if (!old || old.length !== h.size) throw new AppendOffsetError(logical, old?.length ?? 0, h.size);
        await spool.write(old);
      }
      for await (const chunk of source) await spool.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      await spool.flush();
      const spooled = spool.bytesWritten;
      const added = copyOld ? spooled : spooled - h.size;
      if (added === 0) return h.size;
      const reader = (await spool.openReader())!;
      try {
        const key = this.key(logical);
        if (!copyOld && spooled <= this.config.partSize) {
          const buf = Buffer.allocUnsafe(spooled);
          await readFully(reader, buf, 0);
          await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: buf, ContentLength: spooled }));
        } else {
          const up = new MultipartWriter(this, key);
          try {
            if (copyOld) await up.copyPart(key, h.size);
            for (let at = 0; at < spooled; at += this.config.partSize) {
              const buf = Buffer.allocUnsafe(Math.min(this.config.partSize, spooled - at));
              await readFully(reader, buf, at);
              await up.part(buf);
            }
            await up.complete();
          } catch (e) {
            await up.abort();
            throw e;
          }
        }
      } finally {
        await reader.close();
      }
      return h.size + added;
    } finally {
      await spool.abort();
    }
  }

  /**
   * Aborts multipart uploads into blob keys (fills and commits: airlock's, never Distribution's,
   * which uploads under _uploads/) begun before `before`, unless `live` says a writer still owns
   * the key. Other uploads in the bucket are left alone.
   */
  async sweepUnfinished(before: Date, live?: (path: string) => Promise<boolean>): Promise<number> {
    let count = 0;
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    const Prefix = this.key(BLOBS) + '/';
    const base = this.config.prefix ? `${this.config.prefix}/` : '';
    for (;;) {
      const r = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix, KeyMarker, UploadIdMarker }));
      for (const u of r.Uploads ?? []) {
        if (!u.Key || !u.UploadId || (u.Initiated && u.Initiated >= before)) continue;
        if (live && (await live(u.Key.slice(base.length)))) continue;
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId })).catch((e: unknown) => {
          if (!isNotFound(e)) throw e;
        });
        count++;
      }
      if (!r.IsTruncated) return count;
      KeyMarker = r.NextKeyMarker;
      UploadIdMarker = r.NextUploadIdMarker;
    }
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
    const h = await this.#head(logical);
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

/** x-amz-copy-source: bucket/key with each segment percent-encoded (a '?' would start a version id). */
function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * Part size for a server-side copy of `size` bytes: equal parts of at most 1 GiB, so that no part
 * but the last falls under S3's 5 MiB minimum (1 GiB steps would leave a 2 MiB part before the
 * new bytes of an append to a 1 GiB + 2 MiB object).
 */
function copyStep(size: number): number {
  const parts = Math.max(1, Math.ceil(size / 2 ** 30));
  return Math.ceil(size / parts);
}

async function readFully(reader: PositionalReader, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const n = await reader.read(off === 0 ? buf : buf.subarray(off), position + off);
    if (n === 0) throw new Error(`spool file ended ${buf.length - off} bytes early`);
    off += n;
  }
}

/** One multipart upload: parts in order, then complete (or abort). */
class MultipartWriter {
  #uploadId: Promise<string> | undefined;
  readonly #parts: CompletedPart[] = [];
  #next = 1;

  constructor(private readonly driver: S3Driver, readonly key: string) {}

  #id(): Promise<string> {
    this.#uploadId ??= this.driver.client
      .send(new CreateMultipartUploadCommand({ Bucket: this.driver.bucket, Key: this.key }))
      .then((r) => {
        if (!r.UploadId) throw new Error('the object store started a multipart upload without an id');
        return r.UploadId;
      });
    return this.#uploadId;
  }

  /** Uploads a part: the next one in call order, or number `n` (parts running at once). */
  async part(body: Buffer, n?: number): Promise<void> {
    const PartNumber = n ?? this.#next++;
    const UploadId = await this.#id();
    const r = await this.driver.client.send(new UploadPartCommand({ Bucket: this.driver.bucket, Key: this.key, UploadId, PartNumber, Body: body, ContentLength: body.length }));
    this.#parts.push({ PartNumber, ETag: r.ETag });
  }

  async copyPart(fromKey: string, size: number): Promise<void> {
    const source = copySource(this.driver.bucket, fromKey);
    const UploadId = await this.#id();
    const step = copyStep(size);
    for (let at = 0; at < size; at += step) {
      const PartNumber = this.#next++;
      const r = await this.driver.client.send(new UploadPartCopyCommand({
        Bucket: this.driver.bucket, Key: this.key, UploadId, PartNumber, CopySource: source,
        CopySourceRange: `bytes=${at}-${Math.min(size, at + step) - 1}`,
      }));
      this.#parts.push({ PartNumber, ETag: r.CopyPartResult?.ETag });
    }
  }

  get started(): boolean {
    return this.#uploadId !== undefined;
  }

  async complete(): Promise<void> {
    const UploadId = await this.#id();
    const Parts = [...this.#parts].sort((a, b) => a.PartNumber! - b.PartNumber!);
    await this.driver.client.send(new CompleteMultipartUploadCommand({ Bucket: this.driver.bucket, Key: this.key, UploadId, MultipartUpload: { Parts } }));
  }

  async abort(): Promise<void> {
    if (!this.#uploadId) return;
    const UploadId = await this.#uploadId.catch(() => undefined);
    if (!UploadId) return;
    await this.driver.client.send(new AbortMultipartUploadCommand({ Bucket: this.driver.bucket, Key: this.key, UploadId })).catch(() => undefined);
  }
}

/**
 * A staged object: spooled to a local file (readers follow it there), and, once target() names
 * its final key, uploaded from the spool part by part while it grows. commit() uploads the rest
 * and completes the upload; until then the key shows nothing new.
 */
class S3StagedWrite implements StagedWrite {
  #upload: MultipartWriter | undefined;
  /** Bytes of the spool handed to part uploads so far. */
  #queued = 0;
  readonly #running = new Set<Promise<void>>();
  #failed: Error | undefined;
  #reader: Promise<PositionalReader | undefined> | undefined;
  #done = false;

  constructor(private readonly spool: StagedWrite, private readonly driver: S3Driver) {}

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

/** Reads an object at any offset: one ranged GET kept open while reads are sequential. */
class S3Reader implements PositionalReader {
  #body: Readable | undefined;
  #iter: AsyncIterator<Buffer> | undefined;
  #left: Buffer | undefined;
  #at = -1;

  constructor(private readonly driver: S3Driver, private readonly logical: string, private readonly size: number) {}

  async read(buf: Buffer, position: number): Promise<number> {
    if (position >= this.size || buf.length === 0) return 0;
    if (position !== this.#at || !this.#iter) {
      this.#drop();
      const body = await this.driver.readStream(this.logical, { start: position, end: this.size - 1 });
      if (!body) throw new Error(`${this.logical} is gone`);
      this.#body = body;
      this.#iter = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      this.#at = position;
    }
    let off = 0;
    while (off < buf.length) {
      let c = this.#left;
      this.#left = undefined;
      if (!c) {
        if (off > 0) break;
        const r = await this.#iter!.next();
        if (r.done) break;
        c = r.value;
      }
      const n = Math.min(c.length, buf.length - off);
      c.copy(buf, off, 0, n);
      if (n < c.length) this.#left = c.subarray(n);
      off += n;
    }
    this.#at += off;
    return off;
  }

  #drop(): void {
    this.#body?.destroy();
    this.#body = undefined;
    this.#iter = undefined;
    this.#left = undefined;
  }

  async close(): Promise<void> {
    this.#drop();
  }
}
