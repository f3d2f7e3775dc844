/**
 * Garbage collection over the standard layout, safe beside a running serve.
 *
 * Mark: every manifest revision of every repository (with `deleteUntagged`, only those a tag,
 * a pin, a kept index or a kept subject needs) marks itself, its config, layers and children.
 * Sweep: every blob not marked, older than the grace period, is deleted, and the layer links
 * that named it with it. Abandoned uploads go too.
 *
 * Why it is safe while clients push and pull:
 * - a blob written by a push or a fill is new, so the grace period covers it until the manifest
 *   that needs it arrives; a push that relies on an old blob (mount, manifest PUT) refreshes the
 *   blob's time, and the sweep checks the time again just before deleting;
 * - manifests younger than the grace period are never deleted as untagged (an index's children
 *   are pushed before the index);
 * - a blob's data file is removed with one unlink: a reader that has it open reads it whole; a
 *   reader that comes later gets BLOB_UNKNOWN, never part of a blob.
 */
import pLimit from 'p-limit';
import type { Logger } from '../logging/logger.js';
import type { Digest } from '../oci/digest.js';
import { blobDescriptors, childManifests, parseManifest } from '../oci/manifest.js';
import type { Store } from '../storage/store.js';

export interface GcOptions {
  dryRun: boolean;
  /** Also delete manifests that no tag (or pin, kept index, kept subject) needs. */
  deleteUntagged: boolean;
  /** Blobs and manifests younger than this are kept whatever the mark says. */
  grace: number;
  /** Upload sessions untouched this long are removed. */
  abandonAfter: number;
  concurrency?: number;
  now?: number;
  /** Each manifest and blob deleted (not in a dry run), for the audit log. */
  onRemoved?: (r: { kind: 'manifest' | 'blob'; name?: string; digest: string; bytes?: number }) => Promise<void>;
}

export interface GcReport {
  dryRun: boolean;
  repositories: number;
  manifests: number;
  manifestsDeleted: Array<{ name: string; digest: string }>;
  blobs: number;
  blobsDeleted: number;
  bytesFreed: number;
  /** Unmarked blobs kept because they are younger than the grace period. */
  blobsTooYoung: number;
  layerLinksRemoved: number;
  uploadsRemoved: number;
  /** Unfinished object-store uploads and stale fleet leases removed (older than the grace period). */
  unfinishedRemoved: number;
  /** Manifests that could not be read (missing or damaged): their blobs may be swept. */
  warnings: string[];
}

export class GarbageCollector {
  constructor(private readonly store: Store, private readonly log: Logger) {}

  async run(opts: GcOptions): Promise<GcReport> {
    const now = opts.now ?? Date.now();
    const limit = pLimit(opts.concurrency ?? 16);
    const report: GcReport = {
      dryRun: opts.dryRun, repositories: 0, manifests: 0, manifestsDeleted: [], blobs: 0, blobsDeleted: 0, bytesFreed: 0,
      blobsTooYoung: 0, layerLinksRemoved: 0, uploadsRemoved: 0, unfinishedRemoved: 0, warnings: [],
    };
    const marked = new Set<string>();
    const pins = new Map<string, Set<string>>();
    for (const p of await this.store.pins.list()) {
      const s = pins.get(p.name) ?? new Set<string>();
      s.add(p.digest.toString());
      pins.set(p.name, s);
    }
    const repos: string[] = [];

    // ---- mark ----
    for await (const repo of this.store.links.repositories()) {
      repos.push(repo);
      report.repositories++;
      const revisions = await this.store.links.revisions(repo);
      report.manifests += revisions.length;
      const parsed = new Map<string, ReturnType<typeof parseManifest> | undefined>();
      await Promise.all(
        revisions.map((d) =>
          limit(async () => {
            const m = await this.store.blobs.readManifest(d).catch(() => undefined);
            let p: ReturnType<typeof parseManifest> | undefined;
            try {
              p = m && parseManifest(m.bytes);
            } catch {
              p = undefined;
            }
            if (!p) report.warnings.push(`${repo}@${d.toString()}: manifest missing or unreadable`);
            parsed.set(d.toString(), p);
          }),
        ),
      );
      let keep = new Set(revisions.map((d) => d.toString()));
      if (opts.deleteUntagged) keep = await this.#needed(repo, revisions, parsed, pins.get(repo), opts.grace, now);
      const unneeded: Digest[] = [];
      for (const d of revisions) {
        const key = d.toString();
        if (!keep.has(key)) {
          unneeded.push(d);
          report.manifestsDeleted.push({ name: repo, digest: key });
          continue;
        }
        marked.add(key);
        const m = parsed.get(key);
        if (!m) continue;
        for (const b of blobDescriptors(m)) marked.add(b.digest.toString());
        for (const c of childManifests(m)) marked.add(c.digest.toString());
      }
      if (!opts.dryRun) {
        for (const d of unneeded) {
          await this.store.links.deleteManifest(repo, d);
          await opts.onRemoved?.({ kind: 'manifest', name: repo, digest: d.toString() });
        }
      }
    }

    // ---- sweep ----
    const deleted = new Set<string>();
    const candidates: Digest[] = [];
    for await (const d of this.store.blobs.all()) {
      report.blobs++;
      if (!marked.has(d.toString())) candidates.push(d);
    }
    await Promise.all(
      candidates.map((d) =>
        limit(async () => {
          const info = await this.store.blobs.fileInfo(d);
          if (!info) return;
          if (now - info.modTime.getTime() < opts.grace) {
            report.blobsTooYoung++;
            return;
          }
          if (!opts.dryRun) {
            // A push may have claimed it since the walk (mount, manifest PUT): look again.
            const again = await this.store.blobs.modTime(d);
            if (!again || Date.now() - again.getTime() < opts.grace) {
              report.blobsTooYoung++;
              return;
            }
            await this.store.blobs.delete(d);
            await opts.onRemoved?.({ kind: 'blob', digest: d.toString(), bytes: info.size });
          }
          deleted.add(d.toString());
          report.blobsDeleted++;
          report.bytesFreed += info.size;
        }),
      ),
    );

    // Layer links that name a deleted blob would answer HEAD with a blob that is not there.
    for (const repo of repos) {
      const gone = (await this.store.links.layers(repo)).filter((d) => deleted.has(d.toString()));
      report.layerLinksRemoved += gone.length;
      if (!opts.dryRun) await Promise.all(gone.map((d) => limit(() => this.store.links.unlinkBlob(repo, d))));
      for (const u of await this.store.uploads.list(repo)) {
        if (now - u.modTime.getTime() < opts.abandonAfter) continue;
        report.uploadsRemoved++;
        if (!opts.dryRun) await this.store.uploads.delete(repo, u.id);
      }
    }
    if (!opts.dryRun) report.unfinishedRemoved = await this.store.fleet.sweepUnfinished(new Date(now - opts.grace));
    this.log.info({ ...report, manifestsDeleted: report.manifestsDeleted.length, warnings: report.warnings.length }, opts.dryRun ? 'gc dry run' : 'gc done');
    return report;
  }

  /**
   * The revisions --delete-untagged keeps: tagged, pinned or young ones, then (to a fixpoint)
   * the children of kept indexes and the referrers of kept subjects.
   */
  async #needed(
    repo: string,
    revisions: Digest[],
    parsed: Map<string, ReturnType<typeof parseManifest> | undefined>,
    pinned: Set<string> | undefined,
    grace: number,
    now: number,
  ): Promise<Set<string>> {
    const keep = new Set<string>();
    for (const tag of await this.store.links.tagDirectories(repo)) {
      const d = await this.store.links.resolveTag(repo, tag).catch(() => undefined);
      if (d) keep.add(d.toString());
    }
    for (const d of revisions) {
      const key = d.toString();
      if (pinned?.has(key)) keep.add(key);
      const t = await this.store.links.revisionModTime(repo, d);
      if (t && now - t.getTime() < grace) keep.add(key);
    }
    for (let changed = true; changed; ) {
      changed = false;
      for (const d of revisions) {
        const key = d.toString();
        const m = parsed.get(key);
        if (!m) continue;
        if (keep.has(key)) {
          for (const c of childManifests(m)) {
            if (!keep.has(c.digest.toString())) {
              keep.add(c.digest.toString());
              changed = true;
            }
          }
        } else if (m.subject && keep.has(m.subject.digest.toString())) {
          keep.add(key);
          changed = true;
        }
      }
    }
    return keep;
  }
}
