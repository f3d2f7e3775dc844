/**
 * The console's repository index: every stored repository with its tags, manifests, size and
 * pins, in memory, so the list answers in milliseconds for ten thousand names. Built by
 * a walk of the store in the background, kept current by events (manifests fetched, pushes,
 * deletes, evictions: refresh one name) and by a periodic rescan for what other processes
 * (import, load, gc) changed. Manifests are immutable by digest: a rescan parses only the ones it
 * has not seen. Pulls are not kept here: the access records (AccessTimes) count them on the
 * serving thread, which adds them to what the index answers (index-client.ts, repo-list.ts).
 */
import { parseManifest } from '../../oci/manifest.js';
import { blobKey, DistinctBytes, keyOf, mediaTypeOf } from './blob-keys.js';
import type { RepoDetail } from '../../http/console-service.js';
import { emptyTable, type RowTable } from './repo-list.js';

/** What the index reads of the store (store-source.ts adapts the real one). */
export interface IndexSource {
  repositories(): AsyncIterable<string>;
  revisions(repo: string): Promise<string[]>;
  /** Tags with the digest each points at now. */
  tags(repo: string): Promise<Array<[string, string]>>;
  /** A manifest's bytes by digest; undefined when missing. */
  manifest(digest: string): Promise<Buffer | undefined>;
  describe(repo: string): Promise<{ kind: 'local' | 'mirror'; upstream: string | null }>;
  pins(): Promise<Array<{ name: string; digest: string }>>;
}

/** What the index keeps of one manifest. */
export interface ManifestSummary {
  mediaType: string;
  kind: 'index' | 'image';
  /** Its own bytes. */
  size: number;
  /** Its digest: the one string the index keeps for it (tags and repositories share it). */
  digest: string;
  /**
   * Config and layers as plain numbers, [key1, key2, size] per blob, the keys 104 bits of the
   * digest (blobKeys): one array of doubles the garbage collector never scans, not an array and
   * a string per blob (a store of 100,000 blobs kept ~40 MB of heap; scavenges walked it all).
   */
  blobs: number[];
  /** An index's children. */
  children: string[];
  /** A referrer's subject (signatures, SBOMs): shown with it, not as an image of its own. */
  subject?: string;
}

export interface RepoEntry {
  name: string;
  kind: 'local' | 'mirror';
  upstream: string | null;
  tags: Map<string, string>;
  manifests: Set<string>;
  /** Manifests no stored index of the repository names, referrers left out. */
  images: number;
  size: number;
}

/**
 * What the index keeps of a repository: its tags as [tag, digest, …] and its manifests as a plain
 * array (a Map and a Set of a few entries each cost ~250 bytes apiece, times ten thousand).
 */
interface Kept extends Omit<RepoEntry, 'tags' | 'manifests'> {
  tags: string[];
  manifests: string[];
}

const NONE: string[] = [];
const unreadable = (digest: string, size = 0): ManifestSummary => ({ mediaType: 'application/octet-stream', kind: 'image', size, digest, blobs: [], children: NONE });

export class RepoIndex {
  readonly #repos = new Map<string, Kept>();
  readonly #summaries = new Map<string, ManifestSummary>();
  /** Names in order, kept until a name comes or goes: most lists need no sort of names at all. */
  #byName: Array<[name: string, lower: string]> | undefined;
  readonly #pins = new Map<string, Set<string>>();
  readonly #pending = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  /** Set once the first walk has finished. */
  ready = false;

  constructor(private readonly source: IndexSource, private readonly opts: { debounceMs?: number; concurrency?: number } = {}) {}

  get size(): number {
    return this.#repos.size;
  }

  entry(name: string): RepoEntry | undefined {
    const k = this.#repos.get(name);
    if (!k) return undefined;
    const tags = new Map<string, string>();
    for (let i = 0; i + 1 < k.tags.length; i += 2) tags.set(k.tags[i]!, k.tags[i + 1]!);
    return { name: k.name, kind: k.kind, upstream: k.upstream, tags, manifests: new Set(k.manifests), images: k.images, size: k.size };
  }

  summary(digest: string): ManifestSummary | undefined {
    return this.#summaries.get(digest);
  }

  pinned(name: string, digest?: string): boolean {
    const s = this.#pins.get(name);
    return digest === undefined ? (s?.size ?? 0) > 0 : s?.has(digest) === true;
  }

  setPinned(name: string, digest: string, on: boolean): void {
    const s = this.#pins.get(name) ?? new Set<string>();
    if (on) s.add(digest);
    else s.delete(digest);
    if (s.size > 0) this.#pins.set(name, s);
    else this.#pins.delete(name);
  }

  /** Reads the pins again (a prefetch pins what it fetched). */
  async reloadPins(): Promise<void> {
    const pins = await this.source.pins();
    this.#pins.clear();
    for (const p of pins) this.setPinned(p.name, p.digest, true);
  }

  /** Something changed `name` (a push, delete, eviction, fill): refreshed soon, once per burst. */
  changed(name: string): void {
    this.#pending.add(name);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      const names = [...this.#pending];
      this.#pending.clear();
      void this.#each(names, (n) => this.refresh(n)).catch(() => undefined);
    }, this.opts.debounceMs ?? 300);
    this.#timer.unref?.();
  }

  /** Walks the whole store (one walk at a time): new names added, gone ones dropped. */
  scan(): Promise<void> {
    this.#scanning ??= this.#scan().finally(() => {
      this.#scanning = undefined;
    });
    return this.#scanning;
  }

  async #scan(): Promise<void> {
    await this.reloadPins();
    const seen = new Set<string>();
    const names: string[] = [];
    for await (const name of this.source.repositories()) names.push(name);
    await this.#each(names, async (n) => {
      seen.add(n);
      await this.refresh(n, true);
    });
    for (const n of [...this.#repos.keys()]) if (!seen.has(n)) this.#drop(n);
    // Manifests no repository names any more (deleted, evicted) are forgotten.
    const used = new Set<string>();
    for (const e of this.#repos.values()) for (const d of e.manifests) used.add(d);
    for (const d of [...this.#summaries.keys()]) if (!used.has(d)) this.#summaries.delete(d);
    this.ready = true;
    // The name order is built here, so no request pays for it after a walk.
    this.#names();
  }

  async #each(names: string[], fn: (n: string) => Promise<void>): Promise<void> {
    let i = 0;
    const worker = async () => {
      while (i < names.length) {
        const n = names[i++]!;
        await fn(n).catch(() => undefined);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency ?? 8, names.length) }, worker));
  }

  /** Reads one repository again (gone from the store: dropped); `describe`: its kind too (a walk: an import may have made it local). */
  async refresh(name: string, describe = false): Promise<void> {
    const [revisions, tags] = await Promise.all([this.source.revisions(name), this.source.tags(name)]);
    if (revisions.length === 0 && tags.length === 0) {
      this.#drop(name);
      return;
    }
    for (const d of revisions) if (!this.#summaries.has(d)) this.#summaries.set(d, await this.#summarize(d));
    const prev = this.#repos.get(name);
    const { kind, upstream } = prev && !describe ? prev : await this.source.describe(name);
    // The summaries' digest strings, so the entry holds no copies of its own.
    const canon = (d: string) => this.#summaries.get(d)?.digest ?? d;
    const manifests = new Set(revisions.map(canon));
    const entry: Kept = { name: prev?.name ?? name, kind, upstream, tags: tags.filter(([, d]) => manifests.has(d)).flatMap(([t, d]) => [t, canon(d)]), manifests: [...manifests], images: 0, size: 0 };
    const children = new Set<string>();
    for (const d of manifests) for (const c of this.#summaries.get(d)?.children ?? NONE) children.add(c);
    const bytes = new DistinctBytes();
    for (const d of manifests) {
      const s = this.#summaries.get(d) ?? unreadable(d);
      if (!children.has(d) && s.subject === undefined) entry.images++;
      bytes.add(...keyOf(d), s.size);
      bytes.addAll(s.blobs);
    }
    entry.size = bytes.total();
    if (!this.#repos.has(name)) this.#byName = undefined;
    this.#repos.set(name, entry);
  }

  #drop(name: string): void {
    if (this.#repos.delete(name)) this.#byName = undefined;
  }

  async #summarize(digest: string): Promise<ManifestSummary> {
    const bytes = await this.source.manifest(digest).catch(() => undefined);
    // A flat copy of the digest: the one the index keeps (not a slice of a file's text).
    const own = Buffer.from(digest, 'latin1').toString('latin1');
    if (!bytes) return unreadable(own);
    try {
      const m = parseManifest(bytes);
      const all = m.config ? [m.config, ...m.layers] : m.layers;
      // Sized once, doubles only (a pushed array keeps half again as much room).
      const blobs = new Array<number>(all.length * 3).fill(0.5);
      all.forEach((d, i) => {
        [blobs[3 * i], blobs[3 * i + 1]] = blobKey(d.digest.hex);
        blobs[3 * i + 2] = d.size;
      });
      return {
        mediaType: mediaTypeOf(m.mediaType), kind: m.kind, size: bytes.byteLength, digest: own, blobs,
        children: m.manifests.length > 0 ? m.manifests.map((d) => d.digest.toString()) : NONE,
        ...(m.subject ? { subject: m.subject.digest.toString() } : {}),
      };
    } catch {
      return unreadable(own, bytes.byteLength);
    }
  }

  /** Bytes of the distinct blobs (manifests included) one image references, its stored children's too. */
  imageSize(digest: string): number {
    const s = this.#summaries.get(digest);
    if (!s) return 0;
    const bytes = new DistinctBytes();
    bytes.add(...keyOf(digest), s.size);
    bytes.addAll(s.blobs);
    for (const c of s.children) {
      const cs = this.#summaries.get(c);
      if (!cs) continue;
      bytes.add(...keyOf(c), cs.size);
      bytes.addAll(cs.blobs);
    }
    return bytes.total();
  }

  /** Every name in order with its lower case, kept until a name comes or goes. */
  #names(): Array<[string, string]> {
    return (this.#byName ??= [...this.#repos.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((n) => [n, n.toLowerCase()]));
  }

  /** The repositories whose names contain `q` (any case), in name order, as columns. */
  rows(q?: string): RowTable {
    const byName = this.#names();
    const lower = q?.toLowerCase();
    const hits = lower ? byName.filter(([, l]) => l.includes(lower)) : byName;
    const t = emptyTable(hits.length);
    const names = t.names;
    const upstreams = new Map<string, number>();
    for (const [name] of hits) {
      const e = this.#repos.get(name);
      if (!e) continue;
      const i = names.length;
      names.push(name);
      t.images[i] = e.images;
      t.tags[i] = e.tags.length / 2;
      t.sizes[i] = e.size;
      t.mirrored[i] = e.kind === 'mirror' ? 1 : 0;
      if (e.upstream !== null) {
        if (!upstreams.has(e.upstream)) upstreams.set(e.upstream, upstreams.size + 1);
        t.upstreams[i] = upstreams.get(e.upstream)!;
      }
      t.pinned[i] = this.pinned(name) ? 1 : 0;
    }
    t.upstreamNames = [...upstreams.keys()];
    return t;
  }

  /** A repository's page (read again first): its tags and untagged images; lastPulled is the caller's to add. */
  async detail(name: string): Promise<RepoDetail | undefined> {
    await this.refresh(name).catch(() => undefined);
    const e = this.entry(name);
    if (!e) return undefined;
    const tagged = new Set(e.tags.values());
    const children = new Set<string>();
    for (const d of e.manifests) for (const c of this.summary(d)?.children ?? NONE) children.add(c);
    const mediaType = (d: string) => this.summary(d)?.mediaType ?? 'application/octet-stream';
    return {
      name, kind: e.kind, upstream: e.upstream, size: e.size, pinned: this.pinned(name),
      tags: [...e.tags].sort(([a], [b]) => a.localeCompare(b)).map(([tag, digest]) => ({ tag, digest, mediaType: mediaType(digest), size: this.imageSize(digest), lastPulled: null, pinned: this.pinned(name, digest) })),
      untagged: [...e.manifests].filter((d) => !tagged.has(d) && !children.has(d) && this.summary(d)?.subject === undefined).sort().map((digest) => ({ digest, mediaType: mediaType(digest), size: this.imageSize(digest), lastPulled: null })),
    };
  }

  /** What an image page takes from the index. */
  imageFacts(name: string, digest: string): { size: number; pinned: boolean } {
    return { size: this.imageSize(digest), pinned: this.pinned(name, digest) };
  }

  /** Stored images (top-level manifests) and repositories, for the overview. */
  totals(): { images: number; repositories: number } {
    let images = 0;
    for (const e of this.#repos.values()) images += e.images;
    return { images, repositories: this.#repos.size };
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
