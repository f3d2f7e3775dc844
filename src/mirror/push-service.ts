/**
 * The registry's write side (distribution-spec "Push" and "Content Management"): blob upload
 * sessions, cross-repository mounts, manifest pushes with their reference checks, deletes, and
 * the sweep of abandoned uploads. The referrers API, a read, is referrers.ts.
 *
 * Upload bytes live in the layout's `_uploads/<id>/data` and are renamed into `blobs/` only
 * after their digest is verified, so a blob is never visible before it is whole and right. The
 * digest is computed as the bytes arrive (one SHA-256 state per live session in memory); after a
 * restart, or for another algorithm, the upload is read back once to hash it.
 */
import { randomUUID, type Hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../logging/logger.js';
import { received as youngBytes } from '../runtime/young-gc.js';
import { createHasher, Digest, digestBytes } from '../oci/digest.js';
import {
  BlobUnknownError,
  DeniedError,
  TooManyRequestsError,
  BlobUploadUnknownError,
  DigestInvalidError,
  ManifestBlobUnknownError,
  ManifestUnknownError,
  RangeInvalidError,
  SizeInvalidError,
  UnsupportedError,
} from '../oci/errors.js';
import { blobDescriptors, childManifests, parseManifest, type Descriptor } from '../oci/manifest.js';
import type { ManifestReference } from '../oci/reference.js';
import { AppendOffsetError } from '../storage/driver.js';
import type { Store } from '../storage/store.js';
import type { ResolvedName } from './image-source.js';
import { notPushable } from './router.js';

export interface PushOptions {
  /** DELETE over the API (storage.delete.enabled). */
  deleteEnabled: boolean;
  /** An upload untouched this long is removed by sweepUploads(). */
  abandonAfter: number;
  /** Largest blob a push may upload (push.maxBlobSize, else storage.maxSize). */
  maxBlobSize?: number;
  /** Sessions one owner may hold open (push.maxUploads). */
  maxUploads?: number;
}

export interface UploadState {
  id: string;
  /** Bytes received so far. */
  size: number;
}

export interface PushedManifest {
  digest: Digest;
  subject?: Digest;
}

/** A session id as we mint them (a UUID); anything else is unknown, never a path. */
const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class PushService {
  /** Live SHA-256 state per session, so finishing an upload never reads it back. */
  readonly #hashes = new LRUCache<string, { hash: Hash; size: number }>({ max: 4096 });
  /** One request at a time per session: PATCHes of one upload are ordered by offset anyway. */
  readonly #busy = new Map<string, Promise<unknown>>();
  /** Open sessions opened by this process: who owns each (user or client address) and its bytes. */
  readonly #sessions = new Map<string, { owner: string; size: number }>();
  /** Told each repository whose manifests or tags a push or delete changed (the console's index). */
  onChange?: (storeName: string) => void;

  constructor(
    private readonly store: Store,
    private opts: PushOptions,
    private readonly log: Logger,
  ) {}

  /** A reloaded configuration: delete and upload settings. */
  reconfigure(opts: PushOptions): void {
    this.opts = opts;
  }

  /** The stored name a push goes to: only a local name takes pushes (router.ts). */
  #pushName(repository: ResolvedName): string {
    if (!repository.local) throw notPushable(repository.storeName, 'upstream' in repository && repository.upstream !== undefined);
    return repository.storeName;
  }

  #key(repo: string, id: string): string {
    return `${repo}\u0000${id}`;
  }

  async #serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#busy.get(key) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    const tail = run.catch(() => undefined);
    this.#busy.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.#busy.get(key) === tail) this.#busy.delete(key);
    }
  }

  // ---- blob uploads ----------------------------------------------------------------------

  /**
   * Opens an upload session in the repository for `owner` (the user, or the client's address
   * without logins), who may hold at most push.maxUploads open at once.
   */
  async startUpload(repository: ResolvedName, owner = ''): Promise<UploadState> {
    const repo = this.#pushName(repository);
    const max = this.opts.maxUploads;
    if (max !== undefined) {
      let open = 0;
      for (const s of this.#sessions.values()) if (s.owner === owner) open++;
      if (open >= max) {
        throw new TooManyRequestsError(`${open} upload sessions are open for ${owner || 'this client'} (push.maxUploads: ${max}); finish or cancel one first`, { headers: { 'retry-after': '10' } });
      }
    }
    const id = randomUUID();
    await this.store.uploads.create(repo, id);
    this.#hashes.set(this.#key(repo, id), { hash: createHasher('sha256'), size: 0 });
    this.#sessions.set(this.#key(repo, id), { owner, size: 0 });
    return { id, size: 0 };
  }

  /** Bytes held by open upload sessions: they count toward the store's size (storage.maxSize). */
  openUploadBytes(): number {
    let n = 0;
    for (const s of this.#sessions.values()) n += s.size;
    return n;
  }

  #tooLarge(size: number): DeniedError {
    return new DeniedError(`the blob is larger than ${this.opts.maxBlobSize} bytes (${size} or more), the most this registry takes in one blob (push.maxBlobSize or storage.maxSize)`);
  }

  /**
   * Cross-repository mount: links a blob that `from` holds into the repository without a
   * transfer. False when `from` does not hold it (the client then uploads).
   */
  async mount(repository: ResolvedName, digest: Digest, from: ResolvedName): Promise<boolean> {
    const repo = this.#pushName(repository);
    if (!(await this.store.links.isBlobLinked(from.storeName, digest))) return false;
    // Refreshing the blob's time keeps a concurrent gc from sweeping it before the manifest
    // that needs it arrives.
    if (!(await this.store.blobs.touch(digest))) return false;
    await this.store.links.linkBlob(repo, digest);
    return true;
  }

  async status(repository: ResolvedName, id: string): Promise<UploadState> {
    const repo = this.#pushName(repository);
    return { id, size: await this.#size(repo, id) };
  }

  async #size(repo: string, id: string): Promise<number> {
    const size = UPLOAD_ID.test(id) ? await this.store.uploads.size(repo, id) : undefined;
    if (size === undefined) throw new BlobUploadUnknownError(undefined, { detail: { name: repo, uuid: id } });
    return size;
  }

  /**
   * Appends a chunk. `range` is the client's Content-Range: it must start where the upload
   * ends (else 416 with the upload's Range), and the body must be exactly that long.
   */
  async append(repository: ResolvedName, id: string, body: AsyncIterable<Uint8Array>, range?: { start: number; end: number }, length?: number): Promise<UploadState> {
    const repo = this.#pushName(repository);
    const key = this.#key(repo, id);
    return this.#serial(key, async () => {
      const size = await this.#size(repo, id);
      if (range && range.start !== size) throw outOfOrder(size, `chunk starts at ${range.start} but the upload holds ${size} bytes`);
      const expect = range ? range.end - range.start + 1 : length;
      if (range && length !== undefined && length !== expect) throw new SizeInvalidError(`Content-Range ${range.start}-${range.end} announces ${expect} bytes but Content-Length is ${length}`);
      const max = this.opts.maxBlobSize;
      // Refused before a byte is read when the announced size says so; else as the bytes arrive.
      if (max !== undefined && expect !== undefined && size + expect > max) throw this.#tooLarge(size + expect);
      const tooLarge = (n: number) => this.#tooLarge(n);
      let state = this.#hashes.get(key);
      if (state && state.size !== size) state = undefined;
      this.#hashes.delete(key);
      let got = 0;
      const hashing = async function* (): AsyncGenerator<Uint8Array> {
        for await (const chunk of body) {
          got += chunk.byteLength;
          if (max !== undefined && size + got > max) throw tooLarge(size + got);
          if (expect !== undefined && got > expect) throw new SizeInvalidError(`the chunk is longer than the ${expect} bytes its Content-Range or Content-Length announced`);
          state?.hash.update(chunk);
          youngBytes(chunk.byteLength);
          yield chunk;
        }
        if (expect !== undefined && got !== expect) throw new SizeInvalidError(`the chunk holds ${got} bytes, not the ${expect} announced`);
      };
      let n: number | undefined;
      try {
        n = await this.store.uploads.append(repo, id, hashing(), size);
      } catch (e) {
        if (e instanceof AppendOffsetError) throw outOfOrder(e.size, 'another request changed the upload');
        throw e;
      }
      if (n === undefined) throw new BlobUploadUnknownError(undefined, { detail: { name: repo, uuid: id } });
      if (state) this.#hashes.set(key, { hash: state.hash, size: n });
      const session = this.#sessions.get(key);
      if (session) session.size = n;
      return { id, size: n };
    });
  }

  /**
   * Completes an upload (with an optional last chunk): the bytes must hash to `digest`, else
   * DIGEST_INVALID, the session is dropped and nothing is stored.
   */
  async finish(repository: ResolvedName, id: string, digest: Digest, body?: AsyncIterable<Uint8Array>, range?: { start: number; end: number }, length?: number): Promise<void> {
    const repo = this.#pushName(repository);
    if (body) await this.append(repository, id, body, range, length);
    const key = this.#key(repo, id);
    await this.#serial(key, async () => {
      const size = await this.#size(repo, id);
      const state = this.#hashes.get(key);
      this.#hashes.delete(key);
      let actual: string;
      if (state && state.size === size && digest.algorithm === 'sha256') {
        actual = state.hash.digest('hex');
      } else {
        const h = createHasher(digest.algorithm);
        const stream = await this.store.uploads.open(repo, id);
        if (!stream) throw new BlobUploadUnknownError(undefined, { detail: { name: repo, uuid: id } });
        for await (const chunk of stream) h.update(chunk as Buffer);
        actual = h.digest('hex');
      }
      if (actual !== digest.hex) {
        await this.store.uploads.delete(repo, id);
        this.#sessions.delete(key);
        throw new DigestInvalidError(`the upload's ${size} bytes hash to ${digest.algorithm}:${actual}, not ${digest.toString()}`, { detail: { digest: digest.toString() } });
      }
      await this.store.uploads.commit(repo, id, digest);
      this.#sessions.delete(key);
    });
  }

  /** A monolithic upload (POST ?digest= with the whole blob as body). */
  async putBlob(repository: ResolvedName, digest: Digest, body: AsyncIterable<Uint8Array>, length?: number, owner = ''): Promise<void> {
    const { id } = await this.startUpload(repository, owner);
    try {
      await this.finish(repository, id, digest, body, undefined, length);
    } catch (e) {
      await this.store.uploads.delete(repository.storeName, id).catch(() => undefined);
      this.#sessions.delete(this.#key(repository.storeName, id));
      throw e;
    }
  }

  async cancel(repository: ResolvedName, id: string): Promise<void> {
    const repo = this.#pushName(repository);
    await this.#serial(this.#key(repo, id), async () => {
      await this.#size(repo, id);
      this.#hashes.delete(this.#key(repo, id));
      await this.store.uploads.delete(repo, id);
      this.#sessions.delete(this.#key(repo, id));
    });
  }

  /** Removes upload sessions untouched for `abandonAfter`; returns how many. */
  async sweepUploads(now = Date.now()): Promise<number> {
    let removed = 0;
    for await (const repo of this.store.links.repositories()) {
      // A session a request is working on (#serial) stays, however old its last write.
      const gone = await this.store.uploads.sweep(repo, now - this.opts.abandonAfter, (id) => this.#busy.has(this.#key(repo, id)));
      for (const id of gone) {
        this.#hashes.delete(this.#key(repo, id));
        this.#sessions.delete(this.#key(repo, id));
      }
      removed += gone.length;
    }
    if (removed > 0) this.log.info({ removed }, 'removed abandoned uploads');
    return removed;
  }

  // ---- manifests ---------------------------------------------------------------------------

  /**
   * Stores a pushed manifest: valid JSON of a known type, every blob it references linked in the
   * repository and every child manifest present (MANIFEST_BLOB_UNKNOWN naming the first missing
   * one), and, pushed by digest, hashing to that digest.
   */
  async putManifest(repository: ResolvedName, ref: ManifestReference, bytes: Buffer, contentType?: string): Promise<PushedManifest> {
    const repo = this.#pushName(repository);
    const m = parseManifest(bytes, contentType);
    if (ref.kind === 'digest') {
      const actual = digestBytes(bytes, ref.digest.algorithm);
      if (!actual.equals(ref.digest)) throw new DigestInvalidError(`the manifest hashes to ${actual.toString()}, not ${ref.digest.toString()}`, { detail: { digest: ref.digest.toString() } });
    }
    for (const d of blobDescriptors(m)) {
      // Non-distributable layers (foreign URLs) are not expected to be in the registry.
      if (d.urls && d.urls.length > 0) continue;
      if (!(await this.store.links.isBlobLinked(repo, d.digest)) || !(await this.store.blobs.touch(d.digest))) throw blobUnknown(d);
    }
    for (const d of childManifests(m)) {
      if (!(await this.store.links.hasRevision(repo, d.digest)) || !(await this.store.blobs.touch(d.digest))) throw blobUnknown(d);
    }
    // Pushed content makes the name local for good, whatever push.repositories later says.
    await this.store.local.mark(repo);
    const stored = await this.store.links.putManifest(repo, bytes, ref.kind === 'tag' ? ref.tag : undefined, ref.kind === 'digest' ? ref.digest.algorithm : 'sha256');
    this.onChange?.(repo);
    return { digest: stored.digest, ...(m.subject ? { subject: m.subject.digest } : {}) };
  }

  // ---- deletes (distribution-spec "Content Management") ----------------------------------

  #checkDelete(): void {
    if (!this.opts.deleteEnabled) throw new UnsupportedError('deleting is disabled on this registry; set storage.delete.enabled: true in mirror.yml to allow it');
  }

  /** Deletes a manifest by digest (and the tags pointing at it), or a tag alone. */
  async deleteManifest(repository: ResolvedName, ref: ManifestReference): Promise<void> {
    this.#checkDelete();
    const storeName = repository.storeName;
    if (ref.kind === 'tag') {
      if (!(await this.store.links.resolveTag(storeName, ref.tag).catch(() => undefined))) throw new ManifestUnknownError(undefined, { detail: { name: storeName, tag: ref.tag } });
      await this.store.links.deleteTag(storeName, ref.tag);
      this.log.info({ name: storeName, tag: ref.tag }, 'tag deleted');
      this.onChange?.(storeName);
      return;
    }
    if (!(await this.store.links.hasRevision(storeName, ref.digest))) throw new ManifestUnknownError(undefined, { detail: { name: storeName, digest: ref.digest.toString() } });
    const tags = await this.store.links.deleteManifest(storeName, ref.digest);
    this.log.info({ name: storeName, digest: ref.digest.toString(), tags }, 'manifest deleted');
    this.onChange?.(storeName);
  }

  /** Unlinks a blob from a repository; gc reclaims the bytes once nothing uses them. */
  async deleteBlob(repository: ResolvedName, digest: Digest): Promise<void> {
    this.#checkDelete();
    const storeName = repository.storeName;
    if (!(await this.store.links.hasLayer(storeName, digest))) throw new BlobUnknownError(undefined, { detail: { name: storeName, digest: digest.toString() } });
    await this.store.links.unlinkBlob(storeName, digest);
    this.log.info({ name: storeName, digest: digest.toString() }, 'blob unlinked');
  }

}

function outOfOrder(size: number, message: string): RangeInvalidError {
  return new RangeInvalidError(message, { headers: { range: `0-${Math.max(0, size - 1)}` }, detail: { size } });
}

function blobUnknown(d: Descriptor): ManifestBlobUnknownError {
  return new ManifestBlobUnknownError(`manifest references ${d.digest.toString()} (${d.mediaType}), which this repository does not hold; push it first`, {
    detail: { digest: d.digest.toString() },
  });
}
