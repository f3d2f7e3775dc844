/**
 * The console's repository index: every stored repository with its tags, manifests, size and
 * pull figures, in memory, so the list answers in milliseconds for ten thousand names. Built by
 * a walk of the store in the background, kept current by events (pulls, fills, pushes, deletes,
 * evictions: refresh one name) and by a periodic rescan for what other processes (import, load,
 * gc) changed. Manifests are immutable by digest: a rescan parses only the ones it has not seen.
 */
import { parseManifest } from '../../oci/manifest.js';
import type { Repo, RepoPage, RepoQuery, MayPull } from '../../http/console-service.js';

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
  lastPulled(repo: string, digest: string): number | undefined;
}

/** What the index keeps of one manifest. */
export interface ManifestSummary {
  mediaType: string;
  kind: 'index' | 'image';
  /** Its own bytes. */
  size: number;
  /** Config and layers: digest and size. */
  blobs: Array<[string, number]>;
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
  lastPulled: number | null;
}

const UNREADABLE: ManifestSummary = { mediaType: 'application/octet-stream', kind: 'image', size: 0, blobs: [], children: [] };

export class RepoIndex {
  readonly #repos = new Map<string, RepoEntry>();
  readonly #summaries = new Map<string, ManifestSummary>();
  readonly #pulls = new Map<string, Map<string, number>>();
  readonly #pullTotals = new Map<string, number>();
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
    return this.#repos.get(name);
  }

  summary(digest: string): ManifestSummary | undefined {
    return this.#summaries.get(digest);
  }

  pulls(name: string, digest?: string): number {
    if (digest === undefined) return this.#pullTotals.get(name) ?? 0;
    return this.#pulls.get(name)?.get(digest) ?? 0;
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

  /** A manifest of `name` was served: a pull. A digest the index does not know yet refreshes the name. */
  served(name: string, digest: string, at = Date.now()): void {
    const m = this.#pulls.get(name) ?? new Map<string, number>();
    m.set(digest, (m.get(digest) ?? 0) + 1);
    this.#pulls.set(name, m);
    this.#pullTotals.set(name, (this.#pullTotals.get(name) ?? 0) + 1);
    const e = this.#repos.get(name);
    if (e?.manifests.has(digest)) e.lastPulled = Math.max(e.lastPulled ?? 0, at);
    else this.changed(name);
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
    this.list({ sort: 'name', order: 'asc', offset: 0, limit: 0 }, () => false);
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
    const manifests = new Set(revisions);
    const entry: RepoEntry = { name, kind, upstream, tags: new Map(tags.filter(([, d]) => manifests.has(d))), manifests, images: 0, size: 0, lastPulled: null };
    const children = new Set<string>();
    for (const d of manifests) for (const c of this.#summaries.get(d)?.children ?? []) children.add(c);
    const bytes = new Map<string, number>();
    for (const d of manifests) {
      const s = this.#summaries.get(d) ?? UNREADABLE;
      if (!children.has(d) && s.subject === undefined) entry.images++;
      bytes.set(d, s.size);
      for (const [b, n] of s.blobs) bytes.set(b, n);
      const at = this.source.lastPulled(name, d);
      if (at !== undefined && at > (entry.lastPulled ?? 0)) entry.lastPulled = at;
    }
    for (const n of bytes.values()) entry.size += n;
    if (!this.#repos.has(name)) this.#byName = undefined;
    this.#repos.set(name, entry);
  }

  #drop(name: string): void {
    if (this.#repos.delete(name)) this.#byName = undefined;
  }

  async #summarize(digest: string): Promise<ManifestSummary> {
    const bytes = await this.source.manifest(digest).catch(() => undefined);
    if (!bytes) return UNREADABLE;
    try {
      const m = parseManifest(bytes);
      return {
        mediaType: m.mediaType, kind: m.kind, size: bytes.byteLength,
        blobs: [...(m.config ? [m.config] : []), ...m.layers].map((d) => [d.digest.toString(), d.size]),
        children: m.manifests.map((d) => d.digest.toString()),
        ...(m.subject ? { subject: m.subject.digest.toString() } : {}),
      };
    } catch {
      return { ...UNREADABLE, size: bytes.byteLength };
    }
  }

  /** Bytes of the distinct blobs (manifests included) one image references, its stored children's too. */
  imageSize(digest: string): number {
    const s = this.#summaries.get(digest);
    if (!s) return 0;
    const bytes = new Map<string, number>([[digest, s.size]]);
    for (const [b, n] of s.blobs) bytes.set(b, n);
    for (const c of s.children) {
      const cs = this.#summaries.get(c);
      if (!cs) continue;
      bytes.set(c, cs.size);
      for (const [b, n] of cs.blobs) bytes.set(b, n);
    }
    let total = 0;
    for (const n of bytes.values()) total += n;
    return total;
  }

  repo(e: RepoEntry): Repo {
    return {
      name: e.name, kind: e.kind, upstream: e.upstream, images: e.images, tags: e.tags.size, size: e.size,
      lastPulled: e.lastPulled, pulls: this.pulls(e.name), pinned: this.pinned(e.name),
    };
  }

  /**
   * One page of the repositories `may` allows, filtered and sorted in memory: names are kept in
   * order, other keys sort plain numbers (ties by name), and only the page's rows are built.
   */
  list(query: RepoQuery, may: MayPull): RepoPage {
    this.#byName ??= [...this.#repos.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((n) => [n, n.toLowerCase()]);
    const q = query.q?.toLowerCase();
    const rows: RepoEntry[] = [];
    for (const [name, lower] of this.#byName) {
      if (q && !lower.includes(q)) continue;
      const e = this.#repos.get(name);
      if (e && may(name)) rows.push(e);
    }
    const desc = query.order === 'desc';
    if (query.sort === 'name') {
      if (desc) rows.reverse();
    } else {
      const key = query.sort;
      const value = (e: RepoEntry): number =>
        key === 'size' ? e.size : key === 'images' ? e.images : key === 'pulls' ? this.pulls(e.name) : (e.lastPulled ?? -1);
      const keyed = rows.map((e, rank) => ({ e, rank, v: value(e) }));
      // Stable on the name order for equal keys.
      keyed.sort((a, b) => (a.v !== b.v ? (a.v < b.v ? -1 : 1) * (desc ? -1 : 1) : a.rank - b.rank));
      for (let i = 0; i < keyed.length; i++) rows[i] = keyed[i]!.e;
    }
    return { total: rows.length, offset: query.offset, limit: query.limit, items: rows.slice(query.offset, query.offset + query.limit).map((e) => this.repo(e)) };
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
