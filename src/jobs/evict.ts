/**
 * Cache limits: what the store holds per image and repository (`airlock du`), and eviction of
 * the least recently used mirrored images when the store grows past storage.maxSize.
 *
 * The unit of eviction is a whole image: a top-level manifest (an index with its children, or a
 * single-platform manifest), its tags, and the blobs that no remaining manifest anywhere in the
 * store uses. Never evicted: images in names that have no upstream (pushed or imported: the only
 * copy), pinned (prefetched) images, images served in the last minute, blobs being filled.
 */
import type { Logger } from '../logging/logger.js';
import { Digest } from '../oci/digest.js';
import { blobDescriptors, childManifests, parseManifest } from '../oci/manifest.js';
import type { AccessTimes } from '../storage/access-times.js';
import type { RegistryStore } from '../storage/registry-store.js';

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
export async function scanStore(store: RegistryStore, access: AccessTimes | undefined): Promise<StoreScan> {
  const sizes = new Map<string, number>();
  let totalBytes = 0;
  for await (const b of blobSizes(store)) {
    sizes.set(b.digest, b.size);
    totalBytes += b.size;
  }
  const pins = new Set((await store.pins()).map((p) => `${p.name}@${p.digest.toString()}`));
  const units: ImageUnit[] = [];
  for await (const repo of store.repositories()) {
    const revisions = await store.revisions(repo);
    const parsed = new Map<string, ReturnType<typeof parseManifest> | undefined>();
    for (const d of revisions) {
      const m = await store.readManifestBlob(d).catch(() => undefined);
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
        const t = access?.get(repo, key) ?? (await store.revisionModTime(repo, d))?.getTime() ?? 0;
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
export async function storeTotals(store: RegistryStore): Promise<{ bytes: number; blobs: number }> {
  let bytes = 0;
  let blobs = 0;
  for await (const b of blobSizes(store)) {
    bytes += b.size;
    blobs++;
  }
  return { bytes, blobs };
}

/** Every blob in the store with its size (one stat each). */
async function* blobSizes(store: RegistryStore): AsyncGenerator<{ digest: string; size: number }> {
  for await (const d of store.blobs()) {
    const info = await store.blobFileInfo(d);
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
  /** Blobs being filled now. */
  busy: () => Set<string>;
  /** Images served this recently are left alone. */
  recentMs?: number;
  /** Bytes the store holds outside blobs that count toward maxSize (open uploads). */
  extraBytes?: () => number;
}

export interface EvictReport {
  before: number;
  after: number;
  evicted: Array<{ name: string; digest: string }>;
  bytesFreed: number;
  /** Still above the low watermark: nothing evictable was left. */
  short: boolean;
}

export class Evictor {
  #running: Promise<EvictReport | undefined> | undefined;

  constructor(
    private readonly store: RegistryStore,
    private readonly access: AccessTimes,
    private readonly opts: EvictOptions,
    private readonly log: Logger,
    private readonly onEvicted?: (images: number, bytes: number) => void,
  ) {}

  /** Runs eviction if the store is above the high watermark; one run at a time. */
  check(): Promise<EvictReport | undefined> {
    this.#running ??= this.#check().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #check(): Promise<EvictReport | undefined> {
    const scan = await scanStore(this.store, this.access);
    // Uploads in progress will become blobs: room is made for them as for any other bytes.
    scan.totalBytes += this.opts.extraBytes?.() ?? 0;
    if (scan.totalBytes <= this.opts.evictAt * this.opts.maxSize) return undefined;
    return this.evict(scan);
  }

  async evict(scan: StoreScan): Promise<EvictReport> {
    const target = this.opts.evictTo * this.opts.maxSize;
    const report: EvictReport = { before: scan.totalBytes, after: scan.totalBytes, evicted: [], bytesFreed: 0, short: false };
    // How many units use each blob, store-wide.
    const refs = new Map<string, number>();
    for (const u of scan.units) for (const b of u.blobs) refs.set(b, (refs.get(b) ?? 0) + 1);
    const now = Date.now();
    const recent = this.opts.recentMs ?? 60_000;
    const evictable = new Map<string, boolean>();
    for (const u of scan.units) if (!evictable.has(u.repo)) evictable.set(u.repo, await this.opts.evictable(u.repo));
    const candidates = scan.units
      .filter((u) => !u.pinned && now - u.lastAccess >= recent && evictable.get(u.repo) === true)
      .sort((a, b) => a.lastAccess - b.lastAccess);
    for (const u of candidates) {
      if (report.after <= target) break;
      const busy = this.opts.busy();
      // Tags and revisions first, so no manifest names a blob that is about to go.
      for (const m of u.manifests) {
        await this.store.deleteManifest(u.repo, m);
        this.access.forget(u.repo, m.toString());
      }
      for (const b of u.blobs) {
        const n = (refs.get(b) ?? 1) - 1;
        refs.set(b, n);
        if (n > 0 || busy.has(b)) continue;
        const size = scan.sizes.get(b) ?? 0;
        const d = Digest.tryParse(b);
        if (!d) continue;
        await this.store.deleteBlob(d);
        await this.store.unlinkBlob(u.repo, d);
        report.bytesFreed += size;
        report.after -= size;
      }
      report.evicted.push({ name: u.repo, digest: u.digest.toString() });
      this.log.info({ name: u.repo, digest: u.digest.toString(), lastAccess: new Date(u.lastAccess).toISOString() }, 'evicted image');
    }
    report.short = report.after > target;
    if (report.short) this.log.warn({ sizeBytes: report.after, targetBytes: target }, 'store still above storage.evictTo: the rest is pinned, pushed or in use');
    this.onEvicted?.(report.evicted.length, report.bytesFreed);
    this.log.info({ before: report.before, after: report.after, images: report.evicted.length, bytesFreed: report.bytesFreed }, 'eviction done');
    return report;
  }
}
