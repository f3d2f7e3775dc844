import type { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { createHash } from 'node:crypto';
import { Digest, digestBytes } from '../oci/digest.js';
import { parseManifest } from '../oci/manifest.js';
import type { ManifestReference } from '../oci/reference.js';
import type { PositionalReader, StagedWrite, StorageDriver } from './driver.js';
import * as p from './paths.js';
import { leaseName, parseLease } from './fleet-lease.js';

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

export interface RegistryStoreOptions {
  /** Largest manifest read into memory. */
  maxManifestSize: number;
  /** Bytes of manifests kept in memory by digest (content is immutable). */
  manifestCacheBytes: number;
}

/** A link file that does not hold a digest: the store was edited by hand or damaged. */
export class CorruptStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CorruptStoreError';
  }
}

const LINK_MAX = 256;

/**
 * The registry's content on top of a storage driver, in Distribution's layout (see paths.ts).
 * The only place that turns names, tags and digests into paths. Invariants it keeps:
 * a blob is complete and verified before any link names it; links are written after their
 * target; every write is atomic.
 */
export class RegistryStore {
  readonly #manifests: LRUCache<string, StoredManifest>;
  /**
   * Link reads and positive existence checks, kept for a second: a tag GET then costs no
   * syscall, yet a change made by another process (registry:2 on the same directory) is seen
   * within that second. Our own writes update it at once.
   */
  readonly #links = new LRUCache<string, Digest | true>({ max: 10_000, ttl: 1000, ttlAutopurge: false });

  readonly #localNames = new LRUCache<string, boolean>({ max: 10_000, ttl: 3000, ttlAutopurge: false });

  constructor(readonly driver: StorageDriver, private readonly opts: RegistryStoreOptions) {
    this.#manifests = new LRUCache<string, StoredManifest>({
      maxSize: Math.max(1, opts.manifestCacheBytes),
      sizeCalculation: (m) => m.bytes.byteLength + 200,
    });
  }

  // ---- reads -------------------------------------------------------------------------------

  async readLink(path: string): Promise<Digest | undefined> {
    const hit = this.#links.get(path);
    if (hit instanceof Digest) return hit;
    const buf = await this.driver.readFile(path, LINK_MAX);
    if (!buf) return undefined;
    const d = Digest.tryParse(buf.toString('utf8').trim());
    if (!d) throw new CorruptStoreError(`link ${path} does not hold a digest`);
    this.#links.set(path, d);
    return d;
  }

  /** Whether a file exists, remembering a yes for a second (links are only ever removed by gc/delete). */
  async #exists(path: string): Promise<boolean> {
    if (this.#links.has(path)) return true;
    const ok = (await this.driver.stat(path)) !== undefined;
    if (ok) this.#links.set(path, true);
    return ok;
  }

  async #writeLink(path: string, d: Digest): Promise<void> {
    await this.driver.writeFile(path, p.linkContent(d));
    this.#links.set(path, d);
  }

  async statBlob(d: Digest): Promise<BlobInfo | undefined> {
    const info = await this.driver.stat(p.blobDataPath(d));
    return info && !info.isDirectory ? { digest: d, size: info.size } : undefined;
  }

  /**
   * Whether `repo` may serve blob `d`: a layer link, as Distribution requires, or a manifest
   * revision (so a manifest can also be fetched through the blobs endpoint).
   */
  async isBlobLinked(repo: string, d: Digest): Promise<boolean> {
    if (await this.#exists(p.layerLinkPath(repo, d))) return true;
    return this.#exists(p.revisionLinkPath(repo, d));
  }

  async hasLayer(repo: string, d: Digest): Promise<boolean> {
    return this.#exists(p.layerLinkPath(repo, d));
  }

  openBlob(d: Digest, range?: { start: number; end: number }): Promise<Readable | undefined> {
    return this.driver.readStream(p.blobDataPath(d), range);
  }

  /** A presigned URL of a stored blob (object-store drivers only). */
  blobURL(d: Digest, seconds: number): Promise<string> {
    if (!this.driver.presign) return Promise.reject(new Error(`the ${this.driver.kind} driver has no URLs to redirect to`));
    return this.driver.presign(p.blobDataPath(d), seconds);
  }

  /** A positional reader of a stored blob; undefined when it is not stored. */
  openBlobReader(d: Digest): Promise<PositionalReader | undefined> {
    return this.driver.openReader(p.blobDataPath(d));
  }

  async resolveTag(repo: string, tag: string): Promise<Digest | undefined> {
    return this.readLink(p.tagCurrentLinkPath(repo, tag));
  }

  async hasRevision(repo: string, d: Digest): Promise<boolean> {
    return this.#exists(p.revisionLinkPath(repo, d));
  }

  /** The manifest named by tag or digest in `repo`, or undefined. */
  async getManifest(repo: string, ref: ManifestReference): Promise<StoredManifest | undefined> {
    let d: Digest | undefined;
    if (ref.kind === 'tag') {
      d = await this.resolveTag(repo, ref.tag);
      if (!d) return undefined;
    } else {
      d = ref.digest;
    }
    if (!(await this.hasRevision(repo, d))) return undefined;
    return this.readManifestBlob(d);
  }

  /** A manifest's content by digest, verified, from memory when it was read before. */
  async readManifestBlob(d: Digest): Promise<StoredManifest | undefined> {
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

  /** Tags of a repository, sorted; undefined when the repository has no tags directory. */
  async listTags(repo: string): Promise<string[] | undefined> {
    const names = await this.driver.list(p.tagsPath(repo));
    if (!names) return undefined;
    // A tag directory without current/link is a tag being deleted or never finished.
    const out: string[] = [];
    for (const t of names) if (await this.driver.stat(p.tagCurrentLinkPath(repo, t))) out.push(t);
    return out;
  }

  async repositoryExists(repo: string): Promise<boolean> {
    const s = await this.driver.stat(p.repositoryPath(repo));
    return s?.isDirectory === true;
  }

  /**
   * Repository names in Distribution's catalog order: a depth-first walk of repositories/ with
   * each directory's entries in lexical order; a directory holding `_manifests` (or any
   * `_`-prefixed entry) is a repository.
   */
  async *repositories(): AsyncGenerator<string> {
    yield* this.#walkRepositories(p.REPOSITORIES, '');
  }

  async *#walkRepositories(dir: string, prefix: string): AsyncGenerator<string> {
    const names = await this.driver.list(dir);
    if (!names) return;
    if (prefix && names.some((n) => n.startsWith('_'))) yield prefix;
    for (const n of names) {
      if (n.startsWith('_')) continue;
      const child = `${dir}/${n}`;
      const st = await this.driver.stat(child);
      if (st?.isDirectory) yield* this.#walkRepositories(child, prefix ? `${prefix}/${n}` : n);
    }
  }

  /** Digests named by `<dir>/<alg>/<hex>/…` entries (revisions, layers, a tag's index). */
  async #digestsUnder(dir: string): Promise<Digest[]> {
    const out: Digest[] = [];
    for (const alg of (await this.driver.list(dir)) ?? []) {
      for (const hex of (await this.driver.list(`${dir}/${alg}`)) ?? []) {
        const d = Digest.tryParse(`${alg}:${hex}`);
        if (d) out.push(d);
      }
    }
    return out;
  }

  /** Manifest revisions a repository holds links for. */
  revisions(repo: string): Promise<Digest[]> {
    return this.#digestsUnder(p.revisionsPath(repo));
  }

  /** Blobs a repository holds layer links for. */
  layers(repo: string): Promise<Digest[]> {
    return this.#digestsUnder(p.layersPath(repo));
  }

  /** Every digest a tag has pointed at (its index), current one included. */
  tagHistory(repo: string, tag: string): Promise<Digest[]> {
    return this.#digestsUnder(p.tagIndexPath(repo, tag));
  }

  /** Tag directories of a repository, whether or not their current link is there. */
  async tagDirectories(repo: string): Promise<string[]> {
    return (await this.driver.list(p.tagsPath(repo))) ?? [];
  }

  /** Every blob in the store (by walking blobs/), in path order. */
  async *blobs(): AsyncGenerator<Digest> {
    for (const alg of (await this.driver.list(p.BLOBS)) ?? []) {
      for (const prefix of (await this.driver.list(`${p.BLOBS}/${alg}`)) ?? []) {
        for (const hex of (await this.driver.list(`${p.BLOBS}/${alg}/${prefix}`)) ?? []) {
          const d = Digest.tryParse(`${alg}:${hex}`);
          if (d && d.hex.startsWith(prefix)) yield d;
        }
      }
    }
  }

  // ---- writes ------------------------------------------------------------------------------

  /** Writes one link file of the layout (never a blob: those go through commitBlob/putBlob). */
  async writeLayoutLink(f: Exclude<p.LayoutFile, { kind: 'blob' }>, target: Digest): Promise<void> {
    await this.#writeLink(p.layoutPath(f), target);
  }

  /**
   * Removes one link file of the layout, with the directory that holds only it
   * (`<alg>/<hex>/` or `current/`), since listings read those directories' names.
   */
  async deleteLayoutLink(f: Exclude<p.LayoutFile, { kind: 'blob' }>): Promise<void> {
    const path = p.layoutPath(f);
    this.#links.delete(path);
    await this.driver.delete(path);
    await this.driver.delete(path.slice(0, path.lastIndexOf('/')));
  }

  /** Moves a blob out of the layout into .airlock/quarantine, where nothing serves it. */
  async quarantineBlob(d: Digest): Promise<string> {
    const dest = `${p.QUARANTINE}/${d.algorithm}-${d.hex}-${Date.now()}`;
    this.#manifests.delete(d.toString());
    await this.driver.move(p.blobDir(d), dest);
    return dest;
  }

  /** Marks an image as pinned: eviction keeps it (prefetched content). */
  async pin(repo: string, d: Digest): Promise<void> {
    const key = createHash('sha256').update(`${repo}@${d.toString()}`).digest('hex');
    const path = `${p.PINS}/sha256-${key}`;
    if (!(await this.driver.stat(path))) await this.driver.writeFile(path, JSON.stringify({ name: repo, digest: d.toString() }));
  }

  /** Pinned images. */
  async pins(): Promise<Array<{ name: string; digest: Digest }>> {
    const out: Array<{ name: string; digest: Digest }> = [];
    for (const f of (await this.driver.list(p.PINS)) ?? []) {
      const buf = await this.driver.readFile(`${p.PINS}/${f}`, 4096).catch(() => undefined);
      try {
        const j = JSON.parse(buf?.toString('utf8') ?? '') as { name: string; digest: string };
        const d = Digest.tryParse(j.digest);
        if (d && typeof j.name === 'string') out.push({ name: j.name, digest: d });
      } catch {
        // A damaged pin file pins nothing.
      }
    }
    return out;
  }

  /**
   * Marks a name as local: it holds pushed or imported content, so no request, in any spelling,
   * may route it to an upstream (whose copy would replace it) or evict it.
   */
  async markLocal(repo: string): Promise<void> {
    if (this.#localNames.get(repo) === true) return;
    const path = p.localMarkerPath(repo);
    if (!(await this.driver.stat(path))) await this.driver.writeFile(path, JSON.stringify({ name: repo, since: new Date().toISOString() }));
    this.#localNames.set(repo, true, { ttl: 0 });
  }

  /** Whether `repo` was marked local. A yes is kept; a no for a few seconds (another process may mark it). */
  async isMarkedLocal(repo: string): Promise<boolean> {
    const known = this.#localNames.get(repo);
    if (known !== undefined) return known;
    const yes = (await this.driver.stat(p.localMarkerPath(repo))) !== undefined;
    this.#localNames.set(repo, yes, yes ? { ttl: 0 } : undefined);
    return yes;
  }

  stage(): Promise<StagedWrite> {
    return this.driver.stage();
  }

  /** Tells a staged write that it will become blob `d` (an object store uploads into its key meanwhile). */
  targetBlob(staged: StagedWrite, d: Digest): void {
    staged.target?.(p.blobDataPath(d));
  }

  // ---- fleet coordination objects (.airlock/fleet/<name>) ---------------------------------

  /** Creates a coordination object unless one exists: true when this call created it. */
  fleetCreate(name: string, body: string): Promise<boolean> {
    return this.driver.createExclusive(`${p.FLEET}/${name}`, body);
  }

  async fleetRead(name: string): Promise<string | undefined> {
    return (await this.driver.readFile(`${p.FLEET}/${name}`, 64 << 10))?.toString('utf8');
  }

  fleetWrite(name: string, body: string): Promise<void> {
    return this.driver.writeFile(`${p.FLEET}/${name}`, body);
  }

  fleetDelete(name: string): Promise<void> {
    return this.driver.deleteFile(`${p.FLEET}/${name}`);
  }

  /**
   * Removes what writers left unfinished before `before`: an object store's multipart uploads
   * of killed replicas (not those of a fill whose lease is still renewed, however old), dead
   * fill leases and old tag markers.
   */
  async sweepUnfinished(before: Date): Promise<number> {
    const live = async (path: string): Promise<boolean> => {
      const m = /\/blobs\/([a-z0-9]+)\/[0-9a-f]{2}\/([0-9a-f]+)\/data$/.exec(path);
      return m ? this.#leaseLive(leaseName({ algorithm: m[1]!, hex: m[2]! })) : false;
    };
    let count = (await this.driver.sweepUnfinished?.(before, live)) ?? 0;
    for (const dir of ['leases', 'tags']) {
      for (const name of (await this.driver.list(`${p.FLEET}/${dir}`)) ?? []) {
        const path = `${p.FLEET}/${dir}/${name}`;
        const st = await this.driver.stat(path);
        if (!st || st.isDirectory || st.modTime >= before) continue;
        if (dir === 'leases' && (await this.#leaseLive(`leases/${name}`))) continue;
        await this.driver.deleteFile(path);
        count++;
      }
    }
    return count;
  }

  /** Whether a fill lease has not expired (its holder renews it every third of its TTL). */
  async #leaseLive(name: string): Promise<boolean> {
    const lease = parseLease(await this.fleetRead(name).catch(() => undefined));
    return lease !== undefined && lease.expires > Date.now();
  }

  /** Forgets the remembered target of a tag (another replica may have moved it). */
  forgetTag(repo: string, tag: string): void {
    this.#links.delete(p.tagCurrentLinkPath(repo, tag));
  }

  /** Publishes a staged write whose content the caller has verified to hash to `d`. */
  async commitBlob(staged: StagedWrite, d: Digest): Promise<void> {
    await staged.commit(p.blobDataPath(d));
  }

  /** Writes a small blob (a manifest or config) whose bytes are in memory. */
  async putBlob(bytes: Uint8Array, algorithm: Digest['algorithm'] = 'sha256'): Promise<Digest> {
    const d = digestBytes(bytes, algorithm);
    const existing = await this.statBlob(d);
    if (existing?.size !== bytes.byteLength) await this.driver.writeFile(p.blobDataPath(d), bytes);
    return d;
  }

  async linkBlob(repo: string, d: Digest): Promise<void> {
    const path = p.layerLinkPath(repo, d);
    if (!(await this.#exists(path))) await this.#writeLink(path, d);
  }

  /** Stores a manifest's exact bytes, links its revision and, when given, points a tag at it. */
  async putManifest(repo: string, bytes: Buffer, tag?: string, algorithm: Digest['algorithm'] = 'sha256'): Promise<StoredManifest> {
    const mediaType = parseManifest(bytes).mediaType;
    const d = await this.putBlob(bytes, algorithm);
    const rev = p.revisionLinkPath(repo, d);
    if (!(await this.#exists(rev))) await this.#writeLink(rev, d);
    if (tag !== undefined) await this.tagManifest(repo, tag, d);
    const m = { digest: d, bytes, mediaType };
    this.#manifests.set(d.toString(), m);
    return m;
  }

  // ---- uploads (Distribution's _uploads/<id>/{data,startedat}) ------------------------------

  async createUpload(repo: string, id: string): Promise<void> {
    const dir = p.uploadPath(repo, id);
    await this.driver.writeFile(`${dir}/startedat`, new Date().toISOString());
    await this.driver.writeFile(`${dir}/data`, '');
  }

  /** Bytes an upload holds, or undefined when there is no such upload. */
  async uploadSize(repo: string, id: string): Promise<number | undefined> {
    const st = await this.driver.stat(`${p.uploadPath(repo, id)}/data`);
    return st && !st.isDirectory ? st.size : undefined;
  }

  appendUpload(repo: string, id: string, source: AsyncIterable<Uint8Array>, expectedSize?: number): Promise<number | undefined> {
    return this.driver.append(`${p.uploadPath(repo, id)}/data`, source, expectedSize);
  }

  openUpload(repo: string, id: string): Promise<Readable | undefined> {
    return this.driver.readStream(`${p.uploadPath(repo, id)}/data`);
  }

  /**
   * Publishes an upload whose bytes the caller verified to hash to `d`: made durable, renamed
   * into blobs/ (or dropped when the blob is already there, whose time is then refreshed so a
   * running gc keeps it), linked into the repository, and the session removed.
   */
  async commitUpload(repo: string, id: string, d: Digest): Promise<void> {
    const dir = p.uploadPath(repo, id);
    if (!(await this.driver.touch(p.blobDataPath(d)))) {
      await this.driver.sync(`${dir}/data`);
      await this.driver.move(`${dir}/data`, p.blobDataPath(d));
    }
    await this.linkBlob(repo, d);
    await this.driver.delete(dir);
  }

  async deleteUpload(repo: string, id: string): Promise<void> {
    await this.driver.delete(p.uploadPath(repo, id));
  }

  /** Upload sessions of a repository with when each was last written. */
  async uploads(repo: string): Promise<Array<{ id: string; modTime: Date }>> {
    const out: Array<{ id: string; modTime: Date }> = [];
    for (const id of (await this.driver.list(p.uploadsPath(repo))) ?? []) {
      const dir = `${p.uploadPath(repo, id)}`;
      const st = (await this.driver.stat(`${dir}/data`)) ?? (await this.driver.stat(dir));
      if (st) out.push({ id, modTime: st.modTime });
    }
    return out;
  }

  /** Refreshes a blob's time (a push relies on it), so gc's grace period covers it. */
  touchBlob(d: Digest): Promise<boolean> {
    return this.driver.touch(p.blobDataPath(d));
  }

  async revisionModTime(repo: string, d: Digest): Promise<Date | undefined> {
    return (await this.driver.stat(p.revisionLinkPath(repo, d)))?.modTime;
  }

  /** A blob's size and modification time in one look. */
  async blobFileInfo(d: Digest): Promise<{ size: number; modTime: Date } | undefined> {
    const st = await this.driver.stat(p.blobDataPath(d));
    return st && !st.isDirectory ? { size: st.size, modTime: st.modTime } : undefined;
  }

  async blobModTime(d: Digest): Promise<Date | undefined> {
    return (await this.driver.stat(p.blobDataPath(d)))?.modTime;
  }

  // ---- deletes -----------------------------------------------------------------------------

  /** Removes a manifest revision from a repository, and every tag that points at it. */
  async deleteManifest(repo: string, d: Digest): Promise<string[]> {
    const untagged: string[] = [];
    for (const tag of await this.tagDirectories(repo)) {
      const current = await this.resolveTag(repo, tag).catch(() => undefined);
      if (current?.equals(d)) {
        await this.deleteTag(repo, tag);
        untagged.push(tag);
      } else {
        await this.deleteLayoutLink({ kind: 'tag-index', name: repo, tag, digest: d });
      }
    }
    await this.deleteLayoutLink({ kind: 'revision', name: repo, digest: d });
    return untagged;
  }

  /** Removes a tag (its current link first, so a reader never sees a half-removed tag). */
  async deleteTag(repo: string, tag: string): Promise<void> {
    const cur = p.tagCurrentLinkPath(repo, tag);
    this.#links.delete(cur);
    await this.driver.delete(cur);
    await this.driver.delete(p.tagPath(repo, tag));
  }

  /** Unlinks a blob from a repository (the bytes stay until gc finds nothing uses them). */
  async unlinkBlob(repo: string, d: Digest): Promise<void> {
    await this.deleteLayoutLink({ kind: 'layer', name: repo, digest: d });
  }

  /** Removes a blob's bytes (gc's sweep): the data file first, so no reader sees a partial one. */
  async deleteBlob(d: Digest): Promise<void> {
    this.#manifests.delete(d.toString());
    await this.driver.deleteFile(p.blobDataPath(d));
    await this.driver.deleteEmptyDirectory(p.blobDir(d));
  }

  /** Points `tag` at a manifest revision: index entry first, then current (as Distribution). */
  async tagManifest(repo: string, tag: string, d: Digest): Promise<void> {
    const idx = p.tagIndexLinkPath(repo, tag, d);
    if (!(await this.#exists(idx))) await this.#writeLink(idx, d);
    const current = await this.resolveTag(repo, tag).catch(() => undefined);
    if (!current?.equals(d)) await this.#writeLink(p.tagCurrentLinkPath(repo, tag), d);
  }
}
