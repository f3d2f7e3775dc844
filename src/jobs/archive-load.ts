/**
 * Load: images from `docker save` archives (classic, and Docker 25+'s OCI form), `oci-archive`
 * tars and OCI layout directories into local names of the store, all or nothing.
 *
 * Every file of every archive is hashed as it streams and staged (archive-entries.ts); only when
 * all of them have been read are the images resolved (archive-resolve.ts) and checked (digests,
 * sizes, diff_ids, the upstreams' allow and deny lists). Then blobs are committed before the
 * manifests and links that name them, as import does, so a crash mid-commit leaves no dangling
 * link; on any failure the staged files are removed and the store is as it was.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import type { Logger } from '../logging/logger.js';
import { Digest } from '../oci/digest.js';
import { layoutPath } from '../storage/paths.js';
import { publishLinks, type LinkFile } from './publish-links.js';
import type { Store } from '../storage/store.js';
import { blobPathDigest, directoryEntries, entryName, linkTarget, MemoryBudget, readEntry, type ArchiveFile, type SourceEntry } from './archive-entries.js';
import { ArchiveResolver, missingBlob, type BlobToPublish, type ResolvedArchive } from './archive-resolve.js';
import { BundleError } from './bundle-error.js';
import { judgeImport, type ImportPolicy } from './import-policy.js';

export interface LoadOptions {
  maxManifestSize: number;
  /** The stored name and tag of an image reference, routed as a pull of it would be. */
  route(label: string): { name: string; tag: string };
  policy?: ImportPolicy;
  /** Sees every stored name and tag once the archives are read, before anything is published; throws to refuse. */
  authorize?(images: ReadonlyArray<{ name: string; tag: string }>): Promise<void>;
  onProgress?(done: number, total: number): void;
  /**
   * Whether a layer the archive lacks may be taken from anywhere in the store ('any', the
   * operator's `airlock load`) or only where the target repository already links it ('linked',
   * an upload: else it would link other repositories' blobs into the uploader's).
   */
  storeBlobs?: 'any' | 'linked';
  /** Bounds for an archive from a client (an upload); the operator's CLI loads what it is given. */
  limits?: LoadLimits;
}

export interface LoadLimits {
  /** The largest file an archive may hold (push.maxBlobSize or storage.maxSize). */
  maxEntrySize?: number;
  /** The most bytes its entries may add up to, unpacked. */
  maxTotal?: number;
  /** A gzipped archive may unpack to at most this many times its size (plus 64 MiB). */
  maxRatio: number;
  /** The most entries one archive may hold. */
  maxEntries: number;
}

const RATIO_SLACK = 64 * 2 ** 20;

/** How far a gzip stream of `size` bytes may unpack under `limits`. */
function unpackBound(limits: LoadLimits, size: number): number {
  return limits.maxRatio * size + RATIO_SLACK;
}

function tooBig(name: string, size: number, max: number): BundleError {
  return new BundleError(`entry ${name}: ${size} bytes, more than the ${max} this registry takes in one blob (push.maxBlobSize or storage.maxSize)`);
}

export interface LoadReport {
  images: Array<{ name: string; tag: string; digest: string }>;
  blobsAdded: number;
  bytesAdded: number;
  blobsPresent: number;
  manifests: number;
  tagsAdded: number;
  tagsMoved: number;
  tagsUnchanged: number;
  repositories: number;
  policyDenials: string[];
  ms: number;
}


/** NAME[:TAG] as --name gives it: the tag, when it has one. */
function explicitTag(name: string): boolean {
  return name.lastIndexOf(':') > name.lastIndexOf('/');
}

export class ArchiveLoader {
  readonly #read: ArchiveFile[] = [];
  readonly #budget = new MemoryBudget();

  constructor(private readonly store: Store, private readonly opts: LoadOptions, private readonly log: Logger) {}

  async run(paths: string[], name?: string): Promise<LoadReport> {
    const started = Date.now();
    try {
      let total = 0;
      // Progress counts the bytes of archive files read (an OCI layout directory reports none).
      for (const p of paths) {
        const st = await stat(p);
        if (st.isFile()) total += st.size;
      }
      const progress = { done: 0, total };
      const archives: Array<{ file: string; resolved: ResolvedArchive }> = [];
      for (const p of paths) {
        const { files, aliases } = await this.#readArchive(p, progress);
        archives.push({ file: p, resolved: await new ArchiveResolver(this.store, p, files, aliases, this.opts.maxManifestSize, this.opts.storeBlobs).resolve() });
      }
      const count = archives.reduce((n, a) => n + a.resolved.images.length, 0);
      if (name !== undefined && count > 1 && explicitTag(name)) throw new BundleError(`--name ${name} names one image, but ${count} are being loaded (give --name without a tag to keep the archives' tags)`);
      const links = new Map<string, { file: LinkFile; target: Digest }>();
      const images: LoadReport['images'] = [];
      const tagged = new Map<string, Digest>();
      for (const { file, resolved } of archives) {
        for (const img of resolved.images) {
          for (const label of this.#labels(file, img, name)) {
            let r;
            try {
              r = this.opts.route(label);
            } catch (e) {
              throw new BundleError(`${file}: image name ${JSON.stringify(label)} is not valid: ${(e as Error).message}`);
            }
            const key = `${r.name}:${r.tag}`;
            const before = tagged.get(key);
            if (before && !before.equals(img.digest)) throw new BundleError(`${key} names two different images (${before.toString()} and ${img.digest.toString()})`);
            if (before) continue;
            tagged.set(key, img.digest);
            images.push({ name: r.name, tag: r.tag, digest: img.digest.toString() });
            const link = (f: LinkFile, t: Digest) => links.set(layoutPath(f), { file: f, target: t });
            for (const b of img.blobs) link({ kind: 'layer', name: r.name, digest: b }, b);
            for (const m of img.manifests) link({ kind: 'revision', name: r.name, digest: m }, m);
            link({ kind: 'tag-index', name: r.name, tag: r.tag, digest: img.digest }, img.digest);
            link({ kind: 'tag-current', name: r.name, tag: r.tag }, img.digest);
          }
        }
      }
      const policyDenials = judgeImport(this.opts.policy, paths.join(', '), images, 'load');
      await this.opts.authorize?.(images);
      if (this.opts.storeBlobs === 'linked') await this.#checkReused(archives, images);
      const report = await this.#commit(archives.map((a) => a.resolved), links);
      const result: LoadReport = { images, ...report, policyDenials, ms: Date.now() - started };
      this.log.info({ ...result, images: images.length }, 'image archives loaded');
      return result;
    } finally {
      // Whatever was not committed (unreferenced, already stored, or everything after a failure).
      await Promise.all(this.#read.map((f) => f.blob?.staged?.abort()));
    }
  }

  /** Every blob taken from the store must already be linked in each repository it is loaded into. */
  async #checkReused(archives: Array<{ file: string; resolved: ResolvedArchive }>, images: LoadReport['images']): Promise<void> {
    const carried = new Set<string>();
    for (const { resolved } of archives) for (const [k, b] of resolved.blobs) if (b.file || b.bytes) carried.add(k);
    for (const { file, resolved } of archives) {
      for (const img of resolved.images) {
        const names = new Set(images.filter((i) => i.digest === img.digest.toString()).map((i) => i.name));
        for (const d of img.blobs) {
          const b = resolved.blobs.get(d.toString());
          if (!b?.manifest || carried.has(d.toString())) continue;
          const stored = (await this.store.blobs.stat(d))?.size === b.size;
          for (const name of names) {
            if (!stored || !(await this.store.links.isBlobLinked(name, d))) throw new BundleError(missingBlob(file, d, b.manifest, 'linked'));
          }
        }
      }
    }
  }

  /** The references an image is stored under: the archive's, or --name's. */
  #labels(file: string, img: ResolvedArchive['images'][number], name: string | undefined): string[] {
    if (name !== undefined) {
      if (explicitTag(name)) return [name];
      const tagOf = (l: string) => {
        try {
          return [this.opts.route(l).tag];
        } catch {
          return [];
        }
      };
      const tags = [...img.labels.flatMap(tagOf), ...img.tags];
      return tags.length > 0 ? [...new Set(tags)].map((t) => `${name}:${t}`) : [name];
    }
    if (img.labels.length > 0) return img.labels;
    const why = img.tags.length > 0 ? `only a tag (${img.tags.join(', ')}), no name` : 'no name (no RepoTags, no ref.name annotation)';
    throw new BundleError(`${file}: image ${img.digest.toString()} has ${why}: give --name NAME[:TAG]`);
  }

  async #readArchive(file: string, progress: { done: number; total: number }): Promise<{ files: Map<string, ArchiveFile>; aliases: Map<string, string> }> {
    const files = new Map<string, ArchiveFile>();
    const aliases = new Map<string, string>();
    const isDir = (await stat(file)).isDirectory();
    const extract = isDir ? undefined : tar.extract();
    const input = isDir ? undefined : createReadStream(file, { highWaterMark: 1 << 20 });
    // `docker save | gzip` is as common as the bare tar, and docker load takes both.
    const gunzip = !isDir && (await isGzip(file)) ? createGunzip() : undefined;
    if (input && extract) {
      input.on('error', (e) => extract.destroy(e));
      input.on('data', (c) => {
        progress.done += c.length;
        this.opts.onProgress?.(progress.done, progress.total);
      });
      if (gunzip) {
        gunzip.on('error', (e) => extract.destroy(e));
        const limits = this.opts.limits;
        if (limits) {
          // A few KiB of gzip can unpack to terabytes: the bound is checked as it unpacks.
          const cap = Math.min(unpackBound(limits, (await stat(file)).size), limits.maxTotal ?? Infinity);
          let unpacked = 0;
          gunzip.on('data', (c: Buffer) => {
            unpacked += c.length;
            if (unpacked > cap) gunzip.destroy(new BundleError(`${file} unpacks to more than ${cap} bytes (${limits.maxRatio}x its size, or the store's limit): refused`));
          });
        }
        input.pipe(gunzip).pipe(extract);
      } else input.pipe(extract);
    }
    const entries = isDir ? directoryEntries(file) : tarEntries(extract!);
    let current: string | undefined;
    let previous: string | undefined;
    let count = 0;
    let bytes = 0;
    const limits = this.opts.limits;
    try {
      for await (const e of entries) {
        current = e.name;
        const name = entryName(e.name);
        if (limits) {
          bytes += e.size;
          if (++count > limits.maxEntries) throw new BundleError(`${file} holds more than ${limits.maxEntries} entries: refused`);
          // A named blob is stored as it is: refused before its bytes. Another file may be an
          // uncompressed classic layer, stored gzipped: judged on that size once read.
          if (limits.maxEntrySize !== undefined && e.size > limits.maxEntrySize && blobPathDigest(name)) throw tooBig(name, e.size, limits.maxEntrySize);
          if (limits.maxTotal !== undefined && bytes > limits.maxTotal) throw new BundleError(`${file}: its files add up to more than ${limits.maxTotal} bytes, the store's limit (storage.maxSize)`);
        }
        if (e.type === 'directory') {
          previous = current;
          continue;
        }
        if (files.has(name) || aliases.has(name)) throw new BundleError(`entry ${name}: appears twice`);
        if (e.type === 'symlink' || e.type === 'link') {
          aliases.set(name, linkTarget(name, e.linkname ?? '', e.type === 'symlink'));
        } else if (e.type === 'file' || e.type === 'contiguous-file') {
          const f = await readEntry(this.store, { ...e, name }, this.#budget, limits ? { maxUnpacked: unpackBound(limits, e.size) } : {});
          this.#read.push(f);
          files.set(name, f);
          const max = limits?.maxEntrySize;
          if (max !== undefined && f.blob && f.blob.size > max) throw tooBig(name, f.blob.size, max);
        } else {
          throw new BundleError(`entry ${name}: a ${e.type}, which an image archive does not hold`);
        }
        previous = current;
        current = undefined;
      }
    } catch (e) {
      if (e instanceof BundleError) throw e;
      if (!current && !previous) throw new BundleError(`${file} is not an image archive: not a tar (${(e as Error).message.split('.')[0]})`, { cause: e });
      const where = current ? `in entry ${current}` : `after entry ${previous}`;
      throw new BundleError(`${file} is truncated or damaged ${where}: ${(e as Error).message}`, { cause: e });
    } finally {
      input?.destroy();
      gunzip?.destroy();
      extract?.destroy();
    }
    if (files.size === 0) throw new BundleError(`${file} is empty: not an image archive`);
    return { files, aliases };
  }

  async #commit(archives: ResolvedArchive[], links: Map<string, { file: LinkFile; target: Digest }>): Promise<Omit<LoadReport, 'images' | 'policyDenials' | 'ms'>> {
    const blobs = new Map<string, BlobToPublish>();
    const manifests = new Map<string, Buffer>();
    for (const a of archives) {
      for (const [k, b] of a.blobs) if (!blobs.has(k) || b.file?.blob?.staged) blobs.set(k, b);
      for (const [k, m] of a.manifests) manifests.set(k, m);
    }
    let blobsAdded = 0;
    let bytesAdded = 0;
    let blobsPresent = 0;
    const publish = async (d: Digest, size: number, write: () => Promise<unknown>) => {
      if ((await this.store.blobs.stat(d))?.size === size) {
        blobsPresent++;
        return;
      }
      await write();
      blobsAdded++;
      bytesAdded += size;
    };
    for (const b of blobs.values()) {
      const staged = b.file?.blob?.staged;
      if (staged) {
        await publish(b.digest, b.size, async () => {
          await this.store.blobs.commit(staged, b.digest);
          b.file!.blob!.staged = undefined;
        });
      } else if (b.bytes) await publish(b.digest, b.size, () => this.store.blobs.put(b.bytes!, b.digest.algorithm));
      else blobsPresent++;
    }
    for (const [k, bytes] of manifests) {
      const d = Digest.parse(k);
      await publish(d, bytes.length, () => this.store.blobs.put(bytes, d.algorithm));
    }
    return { blobsAdded, bytesAdded, blobsPresent, manifests: manifests.size, ...(await publishLinks(this.store, links.values())) };
  }
}

async function isGzip(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await fh.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

async function* tarEntries(extract: tar.Extract): AsyncGenerator<SourceEntry> {
  for await (const entry of extract) {
    const h = entry.header;
    yield { name: h.name, type: h.type ?? 'file', size: h.size ?? 0, linkname: h.linkname ?? undefined, body: entry as unknown as AsyncIterable<Buffer> };
    entry.resume();
  }
}
