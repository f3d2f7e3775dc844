/**
 * Content-addressed blobs (Distribution's registry/storage/blobstore.go): the bytes under
 * blobs/<alg>/<xx>/<hex>/data, whichever repositories link them. Nothing here knows names or
 * tags; link-store.ts decides who may see a blob.
 */
import type { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { Digest, digestBytes } from '../oci/digest.js';
import { parseManifest } from '../oci/manifest.js';
import type { PositionalReader, StagedWrite, StorageDriver } from './driver.js';
import * as p from './paths.js';

export interface StoredManifest {
  digest: Digest;
  bytes: Buffer;
  /** Derived from the content, as Distribution does (the body's mediaType, else detection). */
  mediaType: string;
}

export interface BlobInfo {
  digest: Digest;
  size: number;
}

export interface BlobStoreOptions {
  /** Largest manifest read into memory. */
  maxManifestSize: number;
  /** Bytes of manifests kept in memory by digest (content is immutable). */
  manifestCacheBytes: number;
}

/** A link file that does not hold a digest, or a blob whose bytes do not hash to its name: the store was edited by hand or damaged. */
export class CorruptStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CorruptStoreError';
  }
}

/**
 * Every blob write ends in a driver commit (temp file, fsync, rename) or a single atomic write,
 * so a blob path only ever shows whole content; callers verify the digest before committing.
 */
export class BlobStore {
  /** Manifests by digest: they are read on every pull and never change. */
  readonly #manifests: LRUCache<string, StoredManifest>;
  /**
   * Sizes of blobs seen stored, for servedSize(): Distribution's in-memory blob descriptor cache.
   * A blob's size never changes; what can change is whether it is still there.
   */
  readonly #sizes = new LRUCache<string, number>({ max: 20_000, ttl: 10 * 60_000, ttlAutopurge: false });

  constructor(private readonly driver: StorageDriver, private readonly opts: BlobStoreOptions) {
    this.#manifests = new LRUCache<string, StoredManifest>({
      maxSize: Math.max(1, opts.manifestCacheBytes),
      sizeCalculation: (m) => m.bytes.byteLength + 200,
    });
  }

  // ---- reads -------------------------------------------------------------------------------

  async stat(d: Digest): Promise<BlobInfo | undefined> {
    const info = await this.driver.stat(p.blobDataPath(d));
    if (!info || info.isDirectory) return undefined;
    this.#sizes.set(d.toString(), info.size);
    return { digest: d, size: info.size };
  }

  /**
   * A blob's size for serving it, from memory once seen: a warm GET on an object store then
   * costs one request, not a HEAD before it. A blob that another process removed meanwhile (gc,
   * eviction on another replica) fails at open(), which serving handles; nothing that writes
   * may decide on this.
   */
  async servedSize(d: Digest): Promise<BlobInfo | undefined> {
    const size = this.#sizes.get(d.toString());
    return size === undefined ? this.stat(d) : { digest: d, size };
  }

  /** A blob's size and modification time in one look. */
  async fileInfo(d: Digest): Promise<{ size: number; modTime: Date } | undefined> {
    const st = await this.driver.stat(p.blobDataPath(d));
    return st && !st.isDirectory ? { size: st.size, modTime: st.modTime } : undefined;
  }

  async modTime(d: Digest): Promise<Date | undefined> {
    return (await this.driver.stat(p.blobDataPath(d)))?.modTime;
  }

  /** The blob's bytes (or an inclusive range of them); undefined when it is not stored. */
  async open(d: Digest, range?: { start: number; end: number }): Promise<Readable | undefined> {
    const s = await this.driver.readStream(p.blobDataPath(d), range);
    if (!s) this.#sizes.delete(d.toString());
    return s;
  }

  /** A positional reader of a stored blob; undefined when it is not stored. */
  openReader(d: Digest): Promise<PositionalReader | undefined> {
    return this.driver.openReader(p.blobDataPath(d));
  }

  /** A presigned URL of a stored blob (object-store drivers only). */
  url(d: Digest, seconds: number): Promise<string> {
    if (!this.driver.presign) return Promise.reject(new Error(`the ${this.driver.kind} driver has no URLs to redirect to`));
    return this.driver.presign(p.blobDataPath(d), seconds);
  }

  /** A manifest's content by digest, verified, from memory when it was read before. */
  async readManifest(d: Digest): Promise<StoredManifest | undefined> {
    const key = d.toString();
    const hit = this.#manifests.get(key);
    if (hit) return hit;
    const bytes = await this.driver.readFile(p.blobDataPath(d), this.opts.maxManifestSize);
    if (!bytes) return undefined;
    const actual = digestBytes(bytes, d.algorithm);
    if (!actual.equals(d)) throw new CorruptStoreError(`blob ${key} holds content that hashes to ${actual.toString()}`);
    const m: StoredManifest = { digest: d, bytes, mediaType: parseManifest(bytes).mediaType };
    this.#manifests.set(key, m);
    return m;
  }

  /** Every blob in the store (by walking blobs/), in path order. */
  async *all(): AsyncGenerator<Digest> {
    for (const alg of (await this.driver.list(p.BLOBS)) ?? []) {
      for (const prefix of (await this.driver.list(`${p.BLOBS}/${alg}`)) ?? []) {
        for (const hex of (await this.driver.list(`${p.BLOBS}/${alg}/${prefix}`)) ?? []) {
          const d = Digest.tryParse(`${alg}:${hex}`);
          if (d && d.hex.startsWith(prefix)) yield d;
        }
      }
    }
  }

  // ---- writes (blobwriter.go) --------------------------------------------------------------

  stage(): Promise<StagedWrite> {
    return this.driver.stage();
  }

  /** Tells a staged write that it will become blob `d` (an object store uploads into its key meanwhile). */
  target(staged: StagedWrite, d: Digest): void {
    staged.target?.(p.blobDataPath(d));
  }

  /** Publishes a staged write whose content the caller has verified to hash to `d`. */
  async commit(staged: StagedWrite, d: Digest): Promise<void> {
    await staged.commit(p.blobDataPath(d));
    this.#sizes.set(d.toString(), staged.bytesWritten);
  }

  /**
   * Publishes a file already in the store (an upload's data) whose bytes the caller verified to
   * hash to `d`: made durable and renamed into blobs/, or, when the blob is there already, left
   * where it is (the blob's time is refreshed so a running gc keeps it).
   */
  async adopt(path: string, d: Digest): Promise<void> {
    if (await this.driver.touch(p.blobDataPath(d))) return;
    await this.driver.sync(path);
    await this.driver.move(path, p.blobDataPath(d));
  }

  /** Writes a small blob (a manifest or config) whose bytes are in memory. */
  async put(bytes: Uint8Array, algorithm: Digest['algorithm'] = 'sha256'): Promise<Digest> {
    const d = digestBytes(bytes, algorithm);
    const existing = await this.stat(d);
    if (existing?.size !== bytes.byteLength) await this.driver.writeFile(p.blobDataPath(d), bytes);
    this.#sizes.set(d.toString(), bytes.byteLength);
    return d;
  }

  /** Writes a manifest's exact bytes as a blob and keeps them in memory for the reads that follow. */
  async putManifest(bytes: Buffer, algorithm: Digest['algorithm'] = 'sha256'): Promise<StoredManifest> {
    const mediaType = parseManifest(bytes).mediaType;
    const d = await this.put(bytes, algorithm);
    const m = { digest: d, bytes, mediaType };
    this.#manifests.set(d.toString(), m);
    return m;
  }

  /** Refreshes a blob's time (a push relies on it), so gc's grace period covers it. */
  touch(d: Digest): Promise<boolean> {
    return this.driver.touch(p.blobDataPath(d));
  }

  // ---- removal -----------------------------------------------------------------------------

  /** Removes a blob's bytes (gc's sweep): the data file first, so no reader sees a partial one. */
  async delete(d: Digest): Promise<void> {
    this.#manifests.delete(d.toString());
    await this.driver.deleteFile(p.blobDataPath(d));
    // Once the bytes are gone: a stat that ran meanwhile found them and would have put it back.
    this.#sizes.delete(d.toString());
    await this.driver.deleteEmptyDirectory(p.blobDir(d));
  }

  /** Moves a blob out of the layout into .airlock/quarantine, where nothing serves it. */
  async quarantine(d: Digest): Promise<string> {
    const dest = p.quarantinePath(d, Date.now());
    this.#manifests.delete(d.toString());
    await this.driver.move(p.blobDir(d), dest);
    this.#sizes.delete(d.toString());
    return dest;
  }
}
