/**
 * What a repository names (Distribution's linkedblobstore.go, manifeststore.go, tagstore.go and
 * catalog.go): layer links, manifest revisions and tags, as link files holding a digest, and the
 * walks over them. A link is written only after the blob it names is stored and verified
 * (blob-store.ts); tags point at revisions of their own repository.
 */
import { LRUCache } from 'lru-cache';
import { Digest } from '../oci/digest.js';
import type { ManifestReference } from '../oci/reference.js';
import { SharedCalls } from '../runtime/shared-calls.js';
import { CorruptStoreError, type BlobStore, type StoredManifest } from './blob-store.js';
import type { StorageDriver } from './driver.js';
import * as p from './paths.js';

const LINK_MAX = 256;

/** A link file of the layout (blobs are not links: blob-store.ts writes those). */
export type LinkFile = Exclude<p.LayoutFile, { kind: 'blob' }>;

export class LinkStore {
  /**
   * Link reads and positive existence checks, kept for a second: a tag GET then costs no
   * syscall, yet a change made by another process (registry:2 on the same directory) is seen
   * within that second. Our own writes update it at once.
   */
  readonly #links = new LRUCache<string, Digest | true>({ max: 10_000, ttl: 1000, ttlAutopurge: false });
  /** Concurrent misses of one link share one read: on an object store each read is a request. */
  readonly #reads = new SharedCalls<Digest | undefined>();
  readonly #stats = new SharedCalls<boolean>();

  constructor(private readonly driver: StorageDriver, private readonly blobs: BlobStore) {}

  // ---- link files --------------------------------------------------------------------------

  async #readLink(path: string): Promise<Digest | undefined> {
    const hit = this.#links.get(path);
    if (hit instanceof Digest) return hit;
    return this.#reads.run(path, async () => {
      const d = await this.#readLinkFile(path);
      if (d) this.#links.set(path, d);
      return d;
    });
  }

  async #readLinkFile(path: string): Promise<Digest | undefined> {
    const buf = await this.driver.readFile(path, LINK_MAX);
    if (!buf) return undefined;
    const d = Digest.tryParse(buf.toString('utf8').trim());
    if (!d) throw new CorruptStoreError(`link ${path} does not hold a digest`);
    return d;
  }

  /** Whether a file exists, remembering a yes for a second (links are only ever removed by gc/delete). */
  async #exists(path: string): Promise<boolean> {
    if (this.#links.has(path)) return true;
    return this.#stats.run(path, async () => {
      const ok = (await this.driver.stat(path)) !== undefined;
      if (ok) this.#links.set(path, true);
      return ok;
    });
  }

  async #writeLink(path: string, d: Digest): Promise<void> {
    await this.driver.writeFile(path, p.linkContent(d));
    this.#links.set(path, d);
    this.#forgetReads(path);
  }

  /** A caller after a change reads for itself, not through a read begun before the change. */
  #forgetReads(path: string): void {
    this.#reads.forget(path);
    this.#stats.forget(path);
  }

  /** The digest one link file of the layout holds (verify reads each); undefined when it is missing. */
  readLayoutLink(f: LinkFile): Promise<Digest | undefined> {
    return this.#readLink(p.layoutPath(f));
  }

  /** Writes one link file of the layout (an import's; its blob is in the store already). */
  async writeLayoutLink(f: LinkFile, target: Digest): Promise<void> {
    await this.#writeLink(p.layoutPath(f), target);
  }

  /**
   * Removes one link file of the layout, with the directory that holds only it
   * (`<alg>/<hex>/` or `current/`), since listings read those directories' names.
   */
  async deleteLayoutLink(f: LinkFile): Promise<void> {
    const path = p.layoutPath(f);
    this.#links.delete(path);
    await this.driver.delete(path);
    this.#forgetReads(path);
    await this.driver.delete(path.slice(0, path.lastIndexOf('/')));
  }

  // ---- layer links (linkedblobstore.go) ----------------------------------------------------

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

  /** Links a stored blob into a repository. */
  async linkBlob(repo: string, d: Digest): Promise<void> {
    const path = p.layerLinkPath(repo, d);
    if (!(await this.#exists(path))) await this.#writeLink(path, d);
  }

  /** Unlinks a blob from a repository (the bytes stay until gc finds nothing uses them). */
  async unlinkBlob(repo: string, d: Digest): Promise<void> {
    await this.deleteLayoutLink({ kind: 'layer', name: repo, digest: d });
  }

  /** Blobs a repository holds layer links for. */
  layers(repo: string): Promise<Digest[]> {
    return this.#digestsUnder(p.layersPath(repo));
  }

  // ---- manifests (manifeststore.go) --------------------------------------------------------

  async hasRevision(repo: string, d: Digest): Promise<boolean> {
    return this.#exists(p.revisionLinkPath(repo, d));
  }

  /** Manifest revisions a repository holds links for. */
  revisions(repo: string): Promise<Digest[]> {
    return this.#digestsUnder(p.revisionsPath(repo));
  }

  async revisionModTime(repo: string, d: Digest): Promise<Date | undefined> {
    return (await this.driver.stat(p.revisionLinkPath(repo, d)))?.modTime;
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
    return this.blobs.readManifest(d);
  }

  /** Stores a manifest's exact bytes, links its revision and, when given, points a tag at it. */
  async putManifest(repo: string, bytes: Buffer, tag?: string, algorithm: Digest['algorithm'] = 'sha256'): Promise<StoredManifest> {
    const m = await this.blobs.putManifest(bytes, algorithm);
    const rev = p.revisionLinkPath(repo, m.digest);
    if (!(await this.#exists(rev))) await this.#writeLink(rev, m.digest);
    if (tag !== undefined) await this.tagManifest(repo, tag, m.digest);
    return m;
  }

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

  // ---- tags (tagstore.go) ------------------------------------------------------------------

  async resolveTag(repo: string, tag: string): Promise<Digest | undefined> {
    return this.#readLink(p.tagCurrentLinkPath(repo, tag));
  }

  /**
   * resolveTag, read from the file and not remembered: for walks of every tag (the console's
   * index), which would fill the cache with cold links and make each pull's lookup slower.
   */
  peekTag(repo: string, tag: string): Promise<Digest | undefined> {
    return this.#readLinkFile(p.tagCurrentLinkPath(repo, tag));
  }

  /** Points `tag` at a manifest revision: index entry first, then current (as Distribution). */
  async tagManifest(repo: string, tag: string, d: Digest): Promise<void> {
    const idx = p.tagIndexLinkPath(repo, tag, d);
    if (!(await this.#exists(idx))) await this.#writeLink(idx, d);
    const current = await this.resolveTag(repo, tag).catch(() => undefined);
    if (!current?.equals(d)) await this.#writeLink(p.tagCurrentLinkPath(repo, tag), d);
  }

  /** Removes a tag (its current link first, so a reader never sees a half-removed tag). */
  async deleteTag(repo: string, tag: string): Promise<void> {
    const cur = p.tagCurrentLinkPath(repo, tag);
    this.#links.delete(cur);
    await this.driver.delete(cur);
    this.#forgetReads(cur);
    await this.driver.delete(p.tagPath(repo, tag));
  }

  /** Forgets the remembered target of a tag (another replica may have moved it). */
  forgetTag(repo: string, tag: string): void {
    const cur = p.tagCurrentLinkPath(repo, tag);
    this.#links.delete(cur);
    this.#forgetReads(cur);
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

  /** Tag directories of a repository, whether or not their current link is there. */
  async tagDirectories(repo: string): Promise<string[]> {
    return (await this.driver.list(p.tagsPath(repo))) ?? [];
  }

  /** Every digest a tag has pointed at (its index), current one included. */
  tagHistory(repo: string, tag: string): Promise<Digest[]> {
    return this.#digestsUnder(p.tagIndexPath(repo, tag));
  }

  // ---- repositories (catalog.go) -----------------------------------------------------------

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
}
