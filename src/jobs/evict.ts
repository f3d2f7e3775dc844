/**
 * Cache limits: what the store holds per image and repository (`airlock du`), and eviction of
 * the least recently used mirrored images under storage.maxSize.
 *
 * The unit of eviction is a whole image: a top-level manifest (an index with its children, or a
 * single-platform manifest), its tags, and the blobs that no remaining manifest anywhere in the
 * store uses. maxSize is a ceiling: a fill reserves room before it commits (reserve()), and when
 * the images not served within evictMinAge are not enough, recently served ones go too, least
 * recently served first. Never evicted: images in names that have no upstream (pushed or
 * imported: the only copy), pinned (prefetched) images, and images with a blob being filled or
 * read. The watermarks (evictAt, evictTo) are the background check's hysteresis.
 */
import type { Logger } from '../logging/logger.js';
import type { SpaceReservation, StoreSpace } from '../mirror/blob-fill.js';
import { Digest } from '../oci/digest.js';
import { blobDescriptors, childManifests, parseManifest } from '../oci/manifest.js';
import type { AccessTimes } from '../storage/access-times.js';
import type { Store } from '../storage/store.js';

export interface ImageUnit {
  repo: string;
  /** The top-level manifest. */
  digest: Digest;
  /** The manifest and its children (for an index). */
  manifests: Digest[];
  /** Every blob digest the unit uses: manifests, configs, layers. */
  blobs: Set<string>;
  /** Last served (or, never served, when its manifest was written). */
  lastAccess: number;
  pinned: boolean;
}

export interface StoreScan {
  units: ImageUnit[];
  /** blob digest → size, for every blob in blobs/. */
  sizes: Map<string, number>;
  totalBytes: number;
}

/** Reads every repository's manifests into image units, and every blob's size. */
export async function scanStore(store: Store, access: AccessTimes | undefined): Promise<StoreScan> {
  const sizes = new Map<string, number>();
  let totalBytes = 0;
  for await (const b of blobSizes(store)) {
    sizes.set(b.digest, b.size);
    totalBytes += b.size;
  }
  const pins = new Set((await store.pins.list()).map((p) => `${p.name}@${p.digest.toString()}`));
  const units: ImageUnit[] = [];
  for await (const repo of store.links.repositories()) {
    const revisions = await store.links.revisions(repo);
    const parsed = new Map<string, ReturnType<typeof parseManifest> | undefined>();
    for (const d of revisions) {
      const m = await store.blobs.readManifest(d).catch(() => undefined);
      let p: ReturnType<typeof parseManifest> | undefined;
      try {
        p = m && parseManifest(m.bytes);
      } catch {
        p = undefined;
      }
      parsed.set(d.toString(), p);
    }
    const children = new Set<string>();
    for (const m of parsed.values()) for (const c of m ? childManifests(m) : []) children.add(c.digest.toString());
    for (const top of revisions) {
      if (children.has(top.toString())) continue;
      const unit: ImageUnit = { repo, digest: top, manifests: [], blobs: new Set(), lastAccess: 0, pinned: false };
      const seen = new Set<string>();
      const visit = async (d: Digest) => {
        const key = d.toString();
        if (seen.has(key)) return;
        seen.add(key);
        unit.manifests.push(d);
        unit.blobs.add(key);
        if (pins.has(`${repo}@${key}`)) unit.pinned = true;
        const t = access?.get(repo, key) ?? (await store.links.revisionModTime(repo, d))?.getTime() ?? 0;
        unit.lastAccess = Math.max(unit.lastAccess, t);
        const m = parsed.get(key);
        if (!m) return;
        for (const b of blobDescriptors(m)) unit.blobs.add(b.digest.toString());
        for (const c of childManifests(m)) if (parsed.has(c.digest.toString())) await visit(c.digest);
      };
      await visit(top);
      units.push(unit);
    }
  }
  return { units, sizes, totalBytes };
}

/** Bytes and count of the blobs in the store. */
export async function storeTotals(store: Store): Promise<{ bytes: number; blobs: number }> {
  let bytes = 0;
  let blobs = 0;
  for await (const b of blobSizes(store)) {
    bytes += b.size;
    blobs++;
  }
  return { bytes, blobs };
}

/** Every blob in the store with its size (one stat each). */
async function* blobSizes(store: Store): AsyncGenerator<{ digest: string; size: number }> {
  for await (const d of store.blobs.all()) {
    const info = await store.blobs.fileInfo(d);
    if (info) yield { digest: d.toString(), size: info.size };
  }
}

export interface EvictOptions {
  maxSize: number;
  /** Fraction of maxSize above which eviction starts. */
  evictAt: number;
  /** Fraction of maxSize eviction brings the store down to. */
  evictTo: number;
  /** Whether a repository's content can be fetched again (it routes to an upstream). */
  evictable: (repo: string) => boolean | Promise<boolean>;
  /** Blobs being filled or read now: they, and the images that use them, are left alone. */
  busy: () => Set<string>;
  /** Images served this recently go only when the ceiling requires it. */
  recentMs?: number;
  /** Bytes the store holds outside blobs that count toward maxSize (open uploads). */
  extraBytes?: () => number;
}

export interface EvictReport {
  /** Blob bytes in the store before and after. */
  before: number;
  after: number;
  evicted: Array<{ name: string; digest: string }>;
  bytesFreed: number;
  /** Still above the low watermark: nothing evictable was left. */
  short: boolean;
}

/**
 * The blob bytes counted between two measures: other writers (pushes, imports, another
 * process) are seen by the next one, at most this long after the last.
 */
const REMEASURE_MS = 10_000;

export class Evictor implements StoreSpace {
  /** Checks and reservations, one at a time: each sees what the previous one evicted and granted. */
  #queue: Promise<unknown> = Promise.resolve();
  #checking: Promise<EvictReport | undefined> | undefined;
  /** Blob bytes in the store: measured, plus what reservations stored and minus what was evicted since. */
  #stored: number | undefined;
  #measuredAt = 0;
  /** Bytes reserved for fills that have not committed yet. */
  #reserved = 0;
  /** Blobs reservations reported stored while a measure ran: it may or may not have seen them. */
  #storedWhileMeasuring: Map<string, number> | undefined;

  constructor(
    private readonly store: Store,
    private readonly access: AccessTimes,
    private readonly opts: EvictOptions,
    private readonly log: Logger,
    private readonly onEvicted?: (images: number, bytes: number) => void,
    /** Each image removed, with the blob bytes its removal freed (the audit log). */
    private readonly onImageEvicted?: (name: string, digest: string, bytes: number) => Promise<void>,
  ) {}

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Runs eviction if the store is above the high watermark (or the ceiling); one run at a time. */
  check(): Promise<EvictReport | undefined> {
    this.#checking ??= this.#serial(() => this.#check()).finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  async #check(): Promise<EvictReport | undefined> {
    const scan = await this.#scan();
    if (this.#total() <= this.opts.evictAt * this.opts.maxSize) return undefined;
    return this.#evict(scan, 0);
  }

  /**
   * Room for `bytes` more blob bytes, made before they are committed: granted at once while the
   * store, open uploads and other reservations leave it, else after evicting (least recently
   * served images first, those served within evictMinAge only if the others are not enough).
   * Undefined when even that cannot make room: then nothing is evicted for it.
   */
  reserve(bytes: number, digest: string): Promise<SpaceReservation | undefined> {
    // Larger than the ceiling itself: no eviction could make the room.
    if (bytes > this.opts.maxSize) return Promise.resolve(undefined);
    return this.#serial(async () => {
      if (this.#stored === undefined || Date.now() - this.#measuredAt > REMEASURE_MS) await this.#measure();
      if (this.#fits(bytes)) return this.#grant(bytes, digest);
      const scan = await this.#scan();
      if (!this.#fits(bytes)) await this.#evict(scan, bytes);
      return this.#fits(bytes) ? this.#grant(bytes, digest) : undefined;
    });
  }

  #total(): number {
    return (this.#stored ?? 0) + (this.opts.extraBytes?.() ?? 0) + this.#reserved;
  }

  #fits(bytes: number): boolean {
    return this.#total() + bytes <= this.opts.maxSize;
  }

  #grant(bytes: number, digest: string): SpaceReservation {
    this.#reserved += bytes;
    let open = true;
    return {
      settle: (stored) => {
        if (!open) return;
        open = false;
        this.#reserved -= bytes;
        if (!stored) return;
        this.#stored = (this.#stored ?? 0) + bytes;
        this.#storedWhileMeasuring?.set(digest, bytes);
      },
    };
  }

  /** Sums the blobs' sizes (a stat each). */
  async #measure(): Promise<void> {
    await this.#measured(async () => {
      const sizes = new Map<string, number>();
      let total = 0;
      for await (const b of blobSizes(this.store)) {
        sizes.set(b.digest, b.size);
        total += b.size;
      }
      return { sizes, totalBytes: total };
    });
  }

  /** Reads the store's images (and measures it on the way). */
  #scan(): Promise<StoreScan> {
    return this.#measured(() => scanStore(this.store, this.access));
  }

  /** Runs a measure; blobs committed meanwhile count once, whether it saw them or not. */
  async #measured<T extends { sizes: Map<string, number>; totalBytes: number }>(measure: () => Promise<T>): Promise<T> {
    const during = new Map<string, number>();
    this.#storedWhileMeasuring = during;
    let m: T;
    try {
      m = await measure();
    } finally {
      this.#storedWhileMeasuring = undefined;
    }
    let stored = m.totalBytes;
    for (const [d, n] of during) if (!m.sizes.has(d)) stored += n;
    this.#stored = stored;
    this.#measuredAt = Date.now();
    return m;
  }

  /**
   * Evicts least recently served images: those not served within evictMinAge down to the low
   * watermark, then, while the store with `need` more bytes would be above maxSize, recently
   * served ones too. Planned first: when `need` cannot fit anyway, nothing is evicted for it.
   */
  async #evict(scan: StoreScan, need: number): Promise<EvictReport> {
    const { maxSize } = this.opts;
    const low = this.opts.evictTo * maxSize;
    const before = this.#stored ?? 0;
    const report: EvictReport = { before, after: before, evicted: [], bytesFreed: 0, short: false };
    // How many units use each blob, store-wide.
    const refs = new Map<string, number>();
    for (const u of scan.units) for (const b of u.blobs) refs.set(b, (refs.get(b) ?? 0) + 1);
    const now = Date.now();
    const recentMs = this.opts.recentMs ?? 60_000;
    const evictable = new Map<string, boolean>();
    for (const u of scan.units) if (!evictable.has(u.repo)) evictable.set(u.repo, await this.opts.evictable(u.repo));
    const busy = this.opts.busy();
    const inUse = (u: ImageUnit, digests: Set<string>) => [...u.blobs].some((b) => digests.has(b));
    const candidates = scan.units
      .filter((u) => !u.pinned && evictable.get(u.repo) === true && !inUse(u, busy))
      .sort((a, b) => a.lastAccess - b.lastAccess);
    const old = candidates.filter((u) => now - u.lastAccess >= recentMs);
    const recent = candidates.filter((u) => now - u.lastAccess < recentMs);
    // The plan: which units, and what each frees (blobs no other unit uses).
    const planned = new Map(refs);
    const frees = (u: ImageUnit) => {
      let n = 0;
      for (const b of u.blobs) {
        const left = (planned.get(b) ?? 1) - 1;
        planned.set(b, left);
        if (left === 0 && !busy.has(b)) n += scan.sizes.get(b) ?? 0;
      }
      return n;
    };
    let total = this.#total();
    const plan: Array<{ unit: ImageUnit; recent: boolean }> = [];
    for (const u of old) {
      if (total + need <= low) break;
      plan.push({ unit: u, recent: false });
      total -= frees(u);
    }
    for (const u of recent) {
      if (total + need <= maxSize) break;
      plan.push({ unit: u, recent: true });
      total -= frees(u);
    }
    if (need > 0 && total + need > maxSize) plan.length = 0;
    for (const { unit: u, recent } of plan) {
      // Being pulled since the plan was made: left alone.
      const busyNow = this.opts.busy();
      if (inUse(u, busyNow)) continue;
      const freedBefore = report.bytesFreed;
      // Tags and revisions first, so no manifest names a blob that is about to go.
      for (const m of u.manifests) {
        await this.store.links.deleteManifest(u.repo, m);
        this.access.forget(u.repo, m.toString());
      }
      for (const b of u.blobs) {
        const n = (refs.get(b) ?? 1) - 1;
        refs.set(b, n);
        if (n > 0 || busyNow.has(b)) continue;
        const size = scan.sizes.get(b) ?? 0;
        const d = Digest.tryParse(b);
        if (!d) continue;
        await this.store.blobs.delete(d);
        await this.store.links.unlinkBlob(u.repo, d);
        report.bytesFreed += size;
        this.#stored = (this.#stored ?? 0) - size;
      }
      report.evicted.push({ name: u.repo, digest: u.digest.toString() });
      await this.onImageEvicted?.(u.repo, u.digest.toString(), report.bytesFreed - freedBefore);
      this.log.info({ name: u.repo, digest: u.digest.toString(), lastAccess: new Date(u.lastAccess).toISOString(), ...(recent ? { recent: true } : {}) }, 'evicted image');
    }
    report.after = this.#stored ?? 0;
    if (need === 0) {
      report.short = this.#total() > low;
      if (report.short) this.log.warn({ sizeBytes: this.#total(), targetBytes: low }, 'store still above storage.evictTo: the rest is pinned, local, in use or served within storage.evictMinAge');
    }
    if (report.evicted.length > 0 || need === 0) {
      this.onEvicted?.(report.evicted.length, report.bytesFreed);
      this.log.info({ before: report.before, after: report.after, images: report.evicted.length, bytesFreed: report.bytesFreed, ...(need > 0 ? { forBytes: need } : {}) }, 'eviction done');
    }
    return report;
  }
}
