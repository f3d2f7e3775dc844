/**
 * Freeze: the store (or the chosen images) as a bundle (bundle.ts), streamed in constant memory
 * and written atomically: the tar goes to a temp file beside the target (or to volumes,
 * bundle-volumes.ts), is fsynced, and only then renamed to its final name.
 *
 * Every blob is re-hashed as it is read, so a bundle never carries a corrupt blob; a mismatch
 * stops the freeze and says to run `airlock verify`.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Logger } from '../logging/logger.js';
import { createHasher, Digest } from '../oci/digest.js';
import { blobDescriptors, formatPlatform, parseManifest, type Platform } from '../oci/manifest.js';
import type { ManifestReference } from '../oci/reference.js';
import { layoutPath } from '../storage/paths.js';
import { LINK_ORDER, type LinkFile } from './publish-links.js';
import type { Store } from '../storage/store.js';
import { BUNDLE_FORMAT, BUNDLE_JSON, BundleError, KIT_DIR, SUMS, SUMS_SIG, bundleId, imageName, type BundleManifest } from './bundle.js';
import type { SiteHoldings } from './inventory.js';
import { VolumeWriter } from './bundle-volumes.js';
import { addEntry, addStoredBlob, addStreamEntry } from './tar-write.js';
import { signBytes, type SigningKey } from './signature.js';

export interface FreezeSelection {
  name: string;
  ref: ManifestReference;
  /** As the operator wrote it, for messages. */
  label: string;
}

export interface FreezeOptions {
  out: string;
  /** Images to include; undefined: everything the store holds. */
  images?: FreezeSelection[];
  /** The earlier bundle's header: blobs it (and its chain) holds are left out. */
  since?: { manifest: BundleManifest; id: string };
  /** A site's inventory: blobs, links and images it holds are left out. */
  have?: SiteHoldings;
  version: string;
  /** airlock's release kit to carry under airlock-kit/ (freeze --with-airlock). */
  kit?: { path: string; name: string; size: number };
  /** Cut the tar into volumes of this many bytes (bundle-volumes.ts) instead of one file. */
  volumeSize?: number;
  /** Signs SHA256SUMS (SHA256SUMS.sig, the last entry) and names the key in the header. */
  sign?: SigningKey;
  onProgress?(done: number, total: number): void;
}

export interface FreezeReport {
  out: string;
  id: string;
  images: number;
  /** name:tag (or name@digest) of each image, for the audit log. */
  imageNames: string[];
  /** sha256 of the SHA256SUMS entry: what names this bundle's content. */
  sums: string;
  /** The volumes written, in order, when cut into volumes. */
  volumes?: string[];
  /** The key id that signed it. */
  signer?: string;
  blobs: number;
  bytes: number;
  skippedBlobs: number;
  links: number;
  warnings: string[];
  ms: number;
}


/** What goes into the bundle, gathered before a byte is written (links are small; blobs are listed, not read). */
class Plan {
  readonly blobs = new Map<string, { digest: Digest; size: number }>();
  readonly links = new Map<string, { file: LinkFile; target: Digest }>();
  readonly images: BundleManifest['images'] = [];
  readonly warnings: string[] = [];

  link(file: LinkFile, target: Digest): void {
    this.links.set(layoutPath(file), { file, target });
  }
}


export class Freezer {
  constructor(private readonly store: Store, private readonly log: Logger) {}

  async run(opts: FreezeOptions): Promise<FreezeReport> {
    const started = Date.now();
    const plan = await this.#plan(opts.images);
    const base = new Set([...(opts.since?.manifest.blobs.map((b) => b.digest) ?? []), ...(opts.since?.manifest.baseBlobs ?? [])]);
    const have = opts.have;
    const blobs = [...plan.blobs.values()].filter((b) => !base.has(b.digest.toString()) && !have?.blobs.has(b.digest.toString()));
    const links = [...plan.links.entries()].filter(([, l]) => !have?.holdsLink(l.file, l.target)).sort((a, b) => LINK_ORDER[a[1].file.kind] - LINK_ORDER[b[1].file.kind] || (a[0] < b[0] ? -1 : 1));
    const header: BundleManifest = {
      format: BUNDLE_FORMAT,
      createdAt: new Date().toISOString(),
      source: { host: hostname(), airlock: opts.version },
      base: opts.since ? { id: opts.since.id, createdAt: opts.since.manifest.createdAt } : null,
      images: have ? plan.images.filter((i) => !have.holdsImage(i.name, i.tag, Digest.parse(i.digest))) : plan.images,
      blobs: blobs.map((b) => ({ digest: b.digest.toString(), size: b.size })),
      baseBlobs: [...base].sort(),
      files: blobs.length + links.length + (opts.kit ? 1 : 0),
      ...(opts.kit ? { kit: { file: `${KIT_DIR}/${opts.kit.name}`, size: opts.kit.size } } : {}),
      ...(have ? { inventory: { id: have.id, createdAt: have.doc.createdAt, host: have.doc.source.host } } : {}),
      ...(opts.sign ? { signer: { keyId: opts.sign.id } } : {}),
    };
    const json = Buffer.from(JSON.stringify(header, null, 1));
    const total = blobs.reduce((a, b) => a + b.size, 0);

    const out = path.resolve(opts.out);
    const tmp = path.join(path.dirname(out), `.${path.basename(out)}.${randomBytes(6).toString('hex')}.partial`);
    const pack = tar.pack();
    const volumes = opts.volumeSize === undefined ? undefined : new VolumeWriter(out, opts.volumeSize);
    const file = volumes ?? createWriteStream(tmp, { flags: 'wx', highWaterMark: 1 << 20 });
    pack.pipe(file);
    const written = finished(file);
    // A write error (disk full) must end the freeze, not leave it waiting for a drain.
    const failed = new Promise<never>((_, reject) => file.once('error', reject));
    failed.catch(() => undefined);
    const sums: string[] = [];
    let sumsDigest = '';
    let done = 0;
    let volumeFiles: string[] | undefined;
    try {
      await Promise.race([addEntry(pack, BUNDLE_JSON, json), failed]);
      sums.push(`${createHasher('sha256').update(json).digest('hex')}  ${BUNDLE_JSON}`);
      if (opts.kit) {
        const name = `${KIT_DIR}/${opts.kit.name}`;
        sums.push(`${await addStreamEntry(pack, name, opts.kit.size, createReadStream(opts.kit.path), failed)}  ${name}`);
      }
      for (const b of blobs) {
        const name = layoutPath({ kind: 'blob', digest: b.digest });
        const sha256 = await addStoredBlob(pack, this.store.blobs, { name, digest: b.digest, size: b.size, mtime: new Date() }, failed, (n) => {
          done += n;
          opts.onProgress?.(done, total);
        });
        sums.push(`${sha256}  ${name}`);
      }
      for (const [name, l] of links) {
        const body = Buffer.from(l.target.toString());
        await Promise.race([addEntry(pack, name, body), failed]);
        sums.push(`${createHasher('sha256').update(body).digest('hex')}  ${name}`);
      }
      const sumsBytes = Buffer.from(sums.join('\n') + '\n');
      sumsDigest = `sha256:${createHasher('sha256').update(sumsBytes).digest('hex')}`;
      await Promise.race([addEntry(pack, SUMS, sumsBytes), failed]);
      if (opts.sign) await Promise.race([addEntry(pack, SUMS_SIG, signBytes(sumsBytes, opts.sign)), failed]);
      pack.finalize();
      await Promise.race([written, failed]);
      if (volumes) {
        volumeFiles = await volumes.commit();
      } else {
        const fh = await open(tmp, 'r+');
        try {
          await fh.datasync();
        } finally {
          await fh.close();
        }
        await rename(tmp, out);
      }
    } catch (e) {
      pack.destroy();
      file.destroy();
      await (volumes ? volumes.abort() : rm(tmp, { force: true }));
      throw e;
    }
    const report: FreezeReport = { out, ...(volumeFiles ? { volumes: volumeFiles } : {}), id: bundleId(json), images: header.images.length, imageNames: header.images.map(imageName), sums: sumsDigest, ...(opts.sign ? { signer: opts.sign.id } : {}), blobs: blobs.length, bytes: total, skippedBlobs: plan.blobs.size - blobs.length, links: links.length, warnings: plan.warnings, ms: Date.now() - started };
    this.log.info({ ...report, warnings: report.warnings.length }, 'bundle written');
    return report;
  }

  async #plan(images: FreezeSelection[] | undefined): Promise<Plan> {
    const plan = new Plan();
    if (images) {
      for (const img of images) {
        let d: Digest | undefined;
        if (img.ref.kind === 'tag') {
          d = await this.store.links.resolveTag(img.name, img.ref.tag);
          if (!d) throw new BundleError(`image ${img.label} is not in the store (no tag ${img.ref.tag} in ${img.name}); prefetch it first`);
        } else {
          d = img.ref.digest;
        }
        const added = await this.#manifest(plan, img.name, d, true, img.label);
        if (!added) throw new BundleError(`image ${img.label} is not in the store; prefetch it first`);
        this.#image(plan, img.name, img.ref.kind === 'tag' ? img.ref.tag : undefined, d, added);
      }
      return plan;
    }
    for await (const name of this.store.links.repositories()) {
      for (const tag of (await this.store.links.listTags(name)) ?? []) {
        const d = await this.store.links.resolveTag(name, tag);
        if (!d) continue;
        const added = await this.#manifest(plan, name, d, false, `${name}:${tag}`);
        if (added) this.#image(plan, name, tag, d, added);
        else plan.warnings.push(`${name}:${tag} left out: not every blob of it is in the store`);
      }
      for (const d of await this.store.links.revisions(name)) await this.#manifest(plan, name, d, false, `${name}@${d.toString()}`);
      // Layer links of blobs no manifest names (a push in progress, a manual copy): carried along.
      for (const d of await this.store.links.layers(name)) {
        const info = await this.store.blobs.stat(d);
        if (info && !plan.links.has(layoutPath({ kind: 'layer', name, digest: d }))) {
          plan.blobs.set(d.toString(), info);
          plan.link({ kind: 'layer', name, digest: d }, d);
        }
      }
    }
    return plan;
  }

  #image(plan: Plan, name: string, tag: string | undefined, d: Digest, added: { mediaType: string; platforms: Platform[] }): void {
    if (tag !== undefined) {
      plan.link({ kind: 'tag-index', name, tag, digest: d }, d);
      plan.link({ kind: 'tag-current', name, tag }, d);
    }
    const entry: BundleManifest['images'][number] = { name, digest: d.toString(), mediaType: added.mediaType, platforms: added.platforms.map(formatPlatform) };
    if (tag !== undefined) entry.tag = tag;
    plan.images.push(entry);
  }

  /**
   * Adds a manifest with what it needs: an image manifest with its config and layers (all of
   * them, or nothing), an index with the children the store holds (a platform-filtered prefetch
   * holds only some). Returns undefined when it cannot be included.
   */
  async #manifest(plan: Plan, name: string, d: Digest, required: boolean, label: string, depth = 0): Promise<{ mediaType: string; platforms: Platform[] } | undefined> {
    if (!(await this.store.links.hasRevision(name, d))) {
      if (required) throw new BundleError(`image ${label} is not in the store (no manifest ${d.toString()} in ${name})`);
      return undefined;
    }
    const info = await this.store.blobs.stat(d);
    const m = info && (await this.store.blobs.readManifest(d));
    if (!info || !m) {
      if (required) throw new BundleError(`image ${label}: manifest ${d.toString()} is linked but its blob is missing; run \`airlock verify\``);
      return undefined;
    }
    const parsed = parseManifest(m.bytes);
    const platforms: Platform[] = [];
    if (parsed.kind === 'index') {
      if (depth > 3) return undefined;
      let any = false;
      for (const c of parsed.manifests) {
        const child = await this.#manifest(plan, name, c.digest, false, label, depth + 1);
        if (child) {
          any = true;
          if (c.platform) platforms.push(c.platform);
        }
      }
      if (!any && parsed.manifests.length > 0) {
        if (required) throw new BundleError(`image ${label}: none of the index's manifests is complete in the store; prefetch it first`);
        return undefined;
      }
    } else {
      const needed: Array<{ digest: Digest; size: number }> = [];
      for (const b of blobDescriptors(parsed)) {
        const bi = await this.store.blobs.stat(b.digest);
        if (!bi) {
          if (required && depth === 0) throw new BundleError(`image ${label} is incomplete in the store: blob ${b.digest.toString()} is missing; prefetch it first`);
          return undefined;
        }
        needed.push(bi);
      }
      for (const b of needed) {
        plan.blobs.set(b.digest.toString(), b);
        // Written even where the store lacks it (a blob first pulled through another
        // repository): registry:2 serves a blob only through its layer link.
        plan.link({ kind: 'layer', name, digest: b.digest }, b.digest);
      }
    }
    plan.blobs.set(d.toString(), info);
    plan.link({ kind: 'revision', name, digest: d }, d);
    return { mediaType: m.mediaType, platforms };
  }
}
