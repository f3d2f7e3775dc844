/**
 * Save: images of the store as one archive that `docker load`, `podman load` and
 * `ctr images import` accept, written atomically (a temp file beside the target, fsynced, then
 * renamed), every blob re-hashed as it is read.
 *
 *   docker: the classic docker-archive: manifest.json, repositories, `<config hex>.json`, and
 *           each layer as its stored (compressed) blob, which docker and podman unpack. One
 *           platform per image: an index needs a platform chosen.
 *   oci:    an OCI image layout: oci-layout, index.json naming each image (the
 *           org.opencontainers.image.ref.name and io.containerd.image.name annotations),
 *           blobs/<alg>/<hex>. An index is kept whole unless a platform is chosen.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Logger } from '../logging/logger.js';
import type { Digest } from '../oci/digest.js';
import { blobDescriptors, formatPlatform, parseManifest, platformMatches, type ParsedManifest, type Platform } from '../oci/manifest.js';
import type { ManifestReference } from '../oci/reference.js';
import type { Store } from '../storage/store.js';
import { BundleError } from './bundle-error.js';
import { addEntry, addStoredBlob } from './tar-write.js';

export interface SaveSelection {
  name: string;
  ref: ManifestReference;
  /** As the operator wrote it, for messages. */
  label: string;
  /** The full reference written into the archive (docker.io/library/alpine:3). */
  reference: string;
}

export interface SaveOptions {
  out: string;
  format: 'docker' | 'oci';
  /** The child of an index to save; docker format needs one (the caller defaults it). */
  platform?: Platform;
  images: SaveSelection[];
  onProgress?(done: number, total: number): void;
}

export interface SaveReport {
  out: string;
  images: Array<{ reference: string; digest: string }>;
  blobs: number;
  bytes: number;
  warnings: string[];
  ms: number;
}

/** What a save writes: the metadata entries, then the blobs. */
export interface SavePlan {
  meta: Array<[string, Buffer]>;
  blobs: Array<{ digest: Digest; size: number; file: string }>;
  /** The blobs' bytes. */
  bytes: number;
  images: SaveReport['images'];
  warnings: string[];
}

const EPOCH = new Date(0);
const LAYER_SUFFIX: Array<[RegExp, string]> = [[/gzip$/, '.tar.gz'], [/zstd$/, '.tar.zst'], [/tar$/, '.tar']];

export class ArchiveSaver {
  constructor(private readonly store: Store, private readonly log: Logger) {}

  async run(opts: SaveOptions): Promise<SaveReport> {
    const started = Date.now();
    const plan = await this.plan(opts);
    await this.#write(opts, plan);
    const report: SaveReport = { out: path.resolve(opts.out), images: plan.images, blobs: plan.blobs.length, bytes: plan.bytes, warnings: plan.warnings, ms: Date.now() - started };
    this.log.info({ ...report, images: plan.images.length, warnings: plan.warnings.length }, 'image archive written');
    return report;
  }

  /**
   * The archive as a stream (the console's download): planned first, so an image the store lacks
   * is refused before the first byte; then written as the reader takes it. A corrupt blob or a
   * reader gone ends the stream with an error.
   */
  async stream(opts: Omit<SaveOptions, 'out'>): Promise<{ plan: SavePlan; body: Readable }> {
    const plan = await this.plan(opts);
    const pack = tar.pack();
    // Its failures are #fill's, handled below; an entry destroyed for a corrupt blob errors the pack too.
    pack.on('error', () => undefined);
    // A node stream for HTTP: tar-stream's are streamx streams.
    const body = new PassThrough({ highWaterMark: 1 << 20 });
    pack.pipe(body);
    const readerGone = new Error('the reader went away');
    const gone = new Promise<never>((_, reject) => body.once('close', () => reject(readerGone)));
    gone.catch(() => undefined);
    this.#fill(pack, opts, plan, gone)
      .then(() => pack.finalize())
      .catch((e: unknown) => {
        if (e === readerGone) this.log.debug('image archive download ended by its reader');
        else this.log.warn({ err: (e as Error).message }, 'image archive download failed');
        pack.destroy();
        body.destroy(e as Error);
      });
    return { plan, body };
  }

  /** What the archive holds; refuses (BundleError) an image the store lacks before anything is written. */
  async plan(opts: Omit<SaveOptions, 'out' | 'onProgress'>): Promise<SavePlan> {
    const warnings: string[] = [];
    const blobs = new Map<string, { digest: Digest; size: number; file: string }>();
    const meta: Array<[string, Buffer]> = [];
    const saved: SaveReport['images'] = [];
    const docker = new Map<string, { Config: string; RepoTags: string[] | null; Layers: string[] }>();
    const repositories: Record<string, Record<string, string>> = {};
    const index: Array<Record<string, unknown>> = [];
    for (const sel of opts.images) {
      const top = await this.#resolve(sel);
      let { digest, bytes, parsed } = top;
      if (parsed.kind === 'index' && (opts.format === 'docker' || opts.platform)) {
        const want = opts.platform ?? { os: 'linux', architecture: 'amd64' };
        const child = parsed.manifests.find((c) => platformMatches(c.platform, want));
        if (!child) throw new BundleError(`image ${sel.label} has no ${formatPlatform(want)} manifest (it has ${parsed.manifests.map((c) => (c.platform ? formatPlatform(c.platform) : 'unknown')).join(', ')}); choose one with --platform`);
        ({ digest, bytes, parsed } = await this.#manifest(sel, child.digest));
      }
      saved.push({ reference: sel.reference, digest: digest.toString() });
      const tag = sel.ref.kind === 'tag' ? sel.ref.tag : undefined;
      if (opts.format === 'docker') {
        const config = parsed.config!;
        const entry = docker.get(config.digest.toString()) ?? { Config: `${config.digest.hex}.json`, RepoTags: null, Layers: [] };
        blobs.set(config.digest.toString(), { ...(await this.#stat(sel, config.digest)), file: entry.Config });
        if (!docker.has(config.digest.toString())) {
          for (const l of parsed.layers) {
            const suffix = LAYER_SUFFIX.find(([re]) => re.test(l.mediaType))?.[1] ?? '.tar.gz';
            const file = `${l.digest.hex}${suffix}`;
            blobs.set(l.digest.toString(), { ...(await this.#stat(sel, l.digest)), file });
            entry.Layers.push(file);
          }
          docker.set(config.digest.toString(), entry);
        }
        if (tag !== undefined) {
          entry.RepoTags = [...(entry.RepoTags ?? []), sel.reference];
          const repo = sel.reference.slice(0, sel.reference.lastIndexOf(':'));
          // Read only by loaders older than manifest.json; they find the image by its ID.
          (repositories[repo] ??= {})[tag] = config.digest.hex;
        }
      } else {
        const add = async (d: Digest) => blobs.set(d.toString(), { ...(await this.#stat(sel, d)), file: `blobs/${d.algorithm}/${d.hex}` });
        await add(digest);
        if (parsed.kind === 'index') {
          let any = false;
          for (const c of parsed.manifests) {
            const child = await this.#manifest(sel, c.digest).catch(() => undefined);
            const parts = child && (await Promise.all(blobDescriptors(child.parsed).map((b) => this.store.blobs.stat(b.digest))));
            if (!child || !parts || parts.some((p) => p === undefined)) {
              warnings.push(`${sel.label}: ${c.platform ? formatPlatform(c.platform) : c.digest.toString()} left out: not in the store`);
              continue;
            }
            any = true;
            await add(c.digest);
            for (const b of blobDescriptors(child.parsed)) await add(b.digest);
          }
          if (!any) throw new BundleError(`image ${sel.label}: none of its index's manifests is complete in the store; prefetch it first`, { missing: true });
        } else {
          for (const b of blobDescriptors(parsed)) await add(b.digest);
        }
        const annotations: Record<string, string> = { 'io.containerd.image.name': sel.reference };
        if (tag !== undefined) annotations['org.opencontainers.image.ref.name'] = tag;
        index.push({ mediaType: parsed.mediaType, digest: digest.toString(), size: bytes.length, annotations });
      }
    }
    if (opts.format === 'docker') {
      meta.push(['manifest.json', Buffer.from(JSON.stringify([...docker.values()]))]);
      meta.push(['repositories', Buffer.from(JSON.stringify(repositories))]);
    } else {
      meta.push(['oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }))]);
      meta.push(['index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: index }))]);
    }
    const total = [...blobs.values()].reduce((a, b) => a + b.size, 0);
    return { meta, blobs: [...blobs.values()], bytes: total, images: saved, warnings };
  }

  async #stat(sel: SaveSelection, d: Digest): Promise<{ digest: Digest; size: number }> {
    const info = await this.store.blobs.stat(d);
    if (!info) throw new BundleError(`image ${sel.label} is incomplete in the store: blob ${d.toString()} is missing; prefetch it first`, { missing: true });
    return info;
  }

  async #resolve(sel: SaveSelection): Promise<{ digest: Digest; bytes: Buffer; parsed: ParsedManifest }> {
    let d: Digest | undefined;
    if (sel.ref.kind === 'tag') {
      d = await this.store.links.resolveTag(sel.name, sel.ref.tag);
      if (!d) throw new BundleError(`image ${sel.label} is not in the store (no tag ${sel.ref.tag} in ${sel.name}); prefetch or load it first`, { missing: true });
    } else d = sel.ref.digest;
    if (!(await this.store.links.hasRevision(sel.name, d))) throw new BundleError(`image ${sel.label} is not in the store (no manifest ${d.toString()} in ${sel.name})`, { missing: true });
    return this.#manifest(sel, d);
  }

  async #manifest(sel: SaveSelection, d: Digest): Promise<{ digest: Digest; bytes: Buffer; parsed: ParsedManifest }> {
    const m = await this.store.blobs.readManifest(d);
    if (!m) throw new BundleError(`image ${sel.label}: manifest ${d.toString()} is missing from the store; prefetch it first`, { missing: true });
    return { digest: d, bytes: m.bytes, parsed: parseManifest(m.bytes) };
  }

  async #write(opts: SaveOptions, plan: SavePlan): Promise<void> {
    const out = path.resolve(opts.out);
    const tmp = path.join(path.dirname(out), `.${path.basename(out)}.${randomBytes(6).toString('hex')}.partial`);
    const pack = tar.pack();
    pack.on('error', () => undefined);
    const file = createWriteStream(tmp, { flags: 'wx', highWaterMark: 1 << 20 });
    pack.pipe(file);
    const written = finished(file);
    // A write error (disk full) must end the save, not leave it waiting for a drain.
    const failed = new Promise<never>((_, reject) => file.once('error', reject));
    failed.catch(() => undefined);
    try {
      await this.#fill(pack, opts, plan, failed);
      pack.finalize();
      await Promise.race([written, failed]);
      const fh = await open(tmp, 'r+');
      try {
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await rename(tmp, out);
    } catch (e) {
      pack.destroy();
      file.destroy();
      await rm(tmp, { force: true });
      throw e;
    }
  }

  /** Every entry of the plan into the tar; `failed` rejects when its destination fails. */
  async #fill(pack: tar.Pack, opts: Pick<SaveOptions, 'format' | 'onProgress'>, plan: SavePlan, failed: Promise<never>): Promise<void> {
    let done = 0;
    if (opts.format === 'oci') {
      await Promise.race([addDirectory(pack, 'blobs/'), failed]);
      for (const alg of new Set(plan.blobs.map((b) => b.digest.algorithm))) await Promise.race([addDirectory(pack, `blobs/${alg}/`), failed]);
    }
    for (const [name, body] of plan.meta) await Promise.race([addEntry(pack, name, body, EPOCH), failed]);
    for (const b of plan.blobs) {
      await addStoredBlob(pack, this.store.blobs, { name: b.file, digest: b.digest, size: b.size, mtime: EPOCH }, failed, (n) => {
        done += n;
        opts.onProgress?.(done, plan.bytes);
      });
    }
  }
}

async function addDirectory(pack: tar.Pack, name: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    pack.entry({ name, type: 'directory', mode: 0o755, mtime: EPOCH }, (err) => (err ? reject(err) : resolve()));
  });
}
