/**
 * What an image archive holds, once all of it has been read (archive-entries.ts): its images,
 * their names as the archive gives them, the manifests to write and the blobs to publish.
 *
 * An OCI layout (index.json: `oci-archive`, `oci:` directories, Docker 25+'s `docker save`) keeps
 * its manifests byte for byte. A classic `docker save` archive (manifest.json alone) gets a
 * Docker v2 schema2 manifest written for it, with the config blob kept byte for byte and each
 * layer checked against the config's rootfs.diff_ids.
 */
import { createHasher, Digest } from '../oci/digest.js';
import { blobDescriptors, parseManifest, type Descriptor } from '../oci/manifest.js';
import { MediaType } from '../oci/media-types.js';
import type { Store } from '../storage/store.js';
import { blobPathDigest, type ArchiveFile } from './archive-entries.js';
import { BundleError } from './bundle-error.js';

export interface BlobToPublish {
  digest: Digest;
  size: number;
  /** A staged (or, when file.blob.staged is unset, already stored) archive file. */
  file?: ArchiveFile;
  /** Bytes in memory (a classic archive's config). */
  bytes?: Buffer;
  /** Set when the blob is taken from the store: the manifest that names it. */
  manifest?: Digest;
}

/**
 * A layer the archive lacks. Where only blobs already linked in the target may be reused, the
 * message is the same whether the store holds the blob or not: it must not tell an uploader
 * what other repositories hold.
 */
export function missingBlob(file: string, blob: Digest, manifest: Digest, storeBlobs: 'any' | 'linked'): string {
  const where = storeBlobs === 'any' ? 'is neither in the archive nor in the store' : 'is not in the archive (nor already in the repository it is loaded into)';
  return `${file}: blob ${blob.toString()} of manifest ${manifest.toString()} ${where}`;
}

export interface ResolvedImage {
  /** References the archive names it by (`alpine:3`, `docker.io/library/alpine:3`). */
  labels: string[];
  /** Tags without a name (an OCI ref.name such as `3`): --name supplies the name. */
  tags: string[];
  digest: Digest;
  /** Every manifest of the image (an index and the children it carries): revision links. */
  manifests: Digest[];
  /** Configs and layers of its image manifests: layer links. */
  blobs: Digest[];
}

export interface ResolvedArchive {
  images: ResolvedImage[];
  blobs: Map<string, BlobToPublish>;
  /** Manifest bytes by digest, children before the indexes that name them. */
  manifests: Map<string, Buffer>;
}

const CONFIG_MAX = 16 * 2 ** 20;
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

function sha256(bytes: Buffer): Digest {
  return Digest.parse(`sha256:${createHasher('sha256').update(bytes).digest('hex')}`);
}

function parseJson(bytes: Buffer, where: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new BundleError(`entry ${where}: not valid JSON: ${(e as Error).message}`);
  }
}

export class ArchiveResolver {
  readonly #out: ResolvedArchive = { images: [], blobs: new Map(), manifests: new Map() };

  constructor(
    private readonly store: Store,
    private readonly file: string,
    private readonly files: Map<string, ArchiveFile>,
    private readonly aliases: Map<string, string>,
    private readonly maxManifestSize: number,
    /** Whether a blob the archive lacks may come from the store (then the loader checks where). */
    private readonly storeBlobs: 'any' | 'linked' = 'any',
  ) {}

  async resolve(): Promise<ResolvedArchive> {
    if (this.#lookup('index.json')) await this.#oci();
    else if (this.#lookup('manifest.json')) await this.#classic();
    else throw new BundleError(`${this.file} is not an image archive: it has neither manifest.json (docker save) nor index.json (OCI layout)`);
    if (this.#out.images.length === 0) throw new BundleError(`${this.file} holds no image`);
    return this.#out;
  }

  /** A file by its path in the archive, following symbolic and hard links. */
  #lookup(name: string): ArchiveFile | undefined {
    let n = name.replace(/^(\.\/)+/, '');
    for (let hops = 0; hops < 16; hops++) {
      const f = this.files.get(n);
      if (f) return f;
      const next = this.aliases.get(n);
      if (next === undefined) return undefined;
      n = next;
    }
    throw new BundleError(`entry ${name}: too many links`);
  }

  async #read(f: ArchiveFile, max: number, what: string): Promise<Buffer> {
    if (f.bytes) return f.bytes;
    if (f.raw.size > max) throw new BundleError(`entry ${f.name}: ${f.raw.size} bytes, too large for ${what}`);
    const staged = f.blob?.staged;
    if (staged) {
      const reader = await staged.openReader();
      if (!reader) throw new BundleError(`entry ${f.name}: its staged copy vanished`);
      try {
        const buf = Buffer.alloc(staged.bytesWritten);
        let off = 0;
        while (off < buf.length) {
          const n = await reader.read(buf.subarray(off), off);
          if (n === 0) break;
          off += n;
        }
        return buf.subarray(0, off);
      } finally {
        await reader.close();
      }
    }
    const stream = f.blob && (await this.store.blobs.open(f.blob.digest));
    if (!stream) throw new BundleError(`entry ${f.name}: vanished from the store`);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  // ---- OCI layout --------------------------------------------------------------------------

  async #oci(): Promise<void> {
    const indexFile = this.#lookup('index.json')!;
    let index;
    try {
      index = parseManifest(await this.#read(indexFile, this.maxManifestSize, 'index.json'));
    } catch (e) {
      throw new BundleError(`entry index.json: not an OCI image index: ${(e as Error).message}`);
    }
    if (index.kind !== 'index') throw new BundleError('entry index.json: not an OCI image index');
    const layout = this.#lookup('oci-layout');
    if (layout?.bytes) {
      const v = (parseJson(layout.bytes, 'oci-layout') as { imageLayoutVersion?: unknown }).imageLayoutVersion;
      if (typeof v !== 'string' || !v.startsWith('1.')) throw new BundleError(`entry oci-layout: imageLayoutVersion ${JSON.stringify(v)} is not 1.x`);
    }
    for (const d of index.manifests) {
      const img: ResolvedImage = { labels: [], tags: [], digest: d.digest, manifests: [], blobs: [] };
      const full = d.annotations?.['io.containerd.image.name'];
      const ref = d.annotations?.['org.opencontainers.image.ref.name'];
      if (full) img.labels.push(full);
      else if (ref && /[/:@]/.test(ref)) img.labels.push(ref);
      else if (ref) img.tags.push(ref);
      const config = await this.#manifest(d, img, 0, true, 'index.json');
      if (img.labels.length === 0 && img.tags.length === 0 && config) img.labels.push(...this.#repoTagsOf(config));
      this.#out.images.push(img);
    }
  }

  /** Docker 25+ names its images in manifest.json too: the RepoTags of the entry with this config. */
  #repoTagsOf(config: Digest): string[] {
    const mf = this.#lookup('manifest.json')?.bytes;
    if (!mf) return [];
    const list = parseJson(mf, 'manifest.json');
    if (!Array.isArray(list)) return [];
    for (const e of list as Array<{ Config?: unknown; RepoTags?: unknown }>) {
      if (typeof e.Config === 'string' && blobPathDigest(e.Config)?.equals(config) && Array.isArray(e.RepoTags)) return e.RepoTags.filter((t): t is string => typeof t === 'string');
    }
    return [];
  }

  /**
   * The archive's file for a digest. A link entry at `blobs/<alg>/<hex>` is followed only to a
   * file whose bytes, as they would be published, hash to that name: otherwise any file (another
   * blob, or one gzipped on the way in) could be published under a digest it does not have.
   */
  #blobFile(d: Digest): ArchiveFile | undefined {
    const name = `blobs/${d.algorithm}/${d.hex}`;
    const f = this.#lookup(name);
    if (!f || f.name === name) return f;
    if (!f.blob || f.blob.gzipped || !f.blob.digest.equals(d)) throw new BundleError(`entry ${name}: links to ${f.name}, whose content as stored would hash to ${(f.blob?.digest ?? f.raw.digest).toString()}, not to the name`);
    return f;
  }

  /** Adds a manifest and what it names; returns an image manifest's config digest. Undefined: an optional child absent. */
  async #manifest(d: Descriptor, img: ResolvedImage, depth: number, required: boolean, by: string): Promise<Digest | undefined> {
    const f = this.#blobFile(d.digest);
    if (!f) {
      if (required) throw new BundleError(`${this.file}: manifest ${d.digest.toString()} named by ${by} is not in the archive`);
      return undefined;
    }
    if (f.raw.size !== d.size) throw new BundleError(`entry ${f.name}: ${f.raw.size} bytes, but ${by} says ${d.size}`);
    if (depth > 3) throw new BundleError(`entry ${f.name}: indexes nested too deep`);
    const bytes = await this.#read(f, this.maxManifestSize, 'a manifest (http.maxManifestSize)');
    let parsed;
    try {
      parsed = parseManifest(bytes);
    } catch (e) {
      throw new BundleError(`entry ${f.name}: not a valid manifest: ${(e as Error).message}`);
    }
    let config: Digest | undefined;
    if (parsed.kind === 'index') {
      let any = false;
      for (const c of parsed.manifests) if ((await this.#manifest(c, img, depth + 1, false, f.name)) !== undefined || this.#out.manifests.has(c.digest.toString())) any = true;
      if (!any && parsed.manifests.length > 0) throw new BundleError(`entry ${f.name}: none of the index's manifests is in the archive`);
      config = d.digest;
    } else {
      for (const b of blobDescriptors(parsed)) {
        const bf = this.#blobFile(b.digest);
        if (!bf) {
          // 'linked' (an upload): nothing about the store is told before the uploader is known to
          // have the right; the loader checks the target repository after authorizing.
          if (this.storeBlobs === 'any' && (await this.store.blobs.stat(b.digest))?.size !== b.size) throw new BundleError(missingBlob(this.file, b.digest, d.digest, this.storeBlobs));
          this.#out.blobs.set(b.digest.toString(), { digest: b.digest, size: b.size, manifest: d.digest });
        } else {
          if (bf.raw.size !== b.size) throw new BundleError(`entry ${bf.name}: ${bf.raw.size} bytes, but manifest ${d.digest.toString()} says ${b.size}`);
          this.#out.blobs.set(b.digest.toString(), { digest: b.digest, size: b.size, file: bf });
        }
        img.blobs.push(b.digest);
      }
      config = parsed.config?.digest;
    }
    this.#out.manifests.set(d.digest.toString(), bytes);
    img.manifests.push(d.digest);
    return config;
  }

  // ---- classic docker save -----------------------------------------------------------------

  async #classic(): Promise<void> {
    const list = parseJson(this.#lookup('manifest.json')!.bytes ?? Buffer.alloc(0), 'manifest.json');
    if (!Array.isArray(list)) throw new BundleError('entry manifest.json: not a list of images');
    for (const [i, raw] of (list as unknown[]).entries()) {
      const e = raw as { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
      const where = `manifest.json image ${i + 1}`;
      if (typeof e.Config !== 'string' || !Array.isArray(e.Layers) || e.Layers.some((l) => typeof l !== 'string')) throw new BundleError(`entry ${where}: needs Config and Layers`);
      const cf = this.#lookup(e.Config);
      if (!cf) throw new BundleError(`${this.file}: ${e.Config}, the config of ${where}, is not in the archive`);
      const cfg = await this.#read(cf, CONFIG_MAX, 'an image config');
      const cfgDigest = sha256(cfg);
      const named = /(?:^|\/)([a-f0-9]{64})(?:\.json)?$/.exec(e.Config)?.[1];
      if (named && named !== cfgDigest.hex) throw new BundleError(`entry ${cf.name}: content does not match its name (it hashes to ${cfgDigest.toString()})`);
      const diffIds = (parseJson(cfg, cf.name) as { rootfs?: { diff_ids?: unknown } }).rootfs?.diff_ids;
      if (!Array.isArray(diffIds) || diffIds.length !== e.Layers.length) {
        throw new BundleError(`entry ${cf.name}: rootfs.diff_ids lists ${Array.isArray(diffIds) ? diffIds.length : 'no'} layers, ${where} ${e.Layers.length}`);
      }
      const img: ResolvedImage = { labels: Array.isArray(e.RepoTags) ? e.RepoTags.filter((t): t is string => typeof t === 'string') : [], tags: [], digest: cfgDigest, manifests: [], blobs: [cfgDigest] };
      const layers = [];
      for (const [j, p] of (e.Layers as string[]).entries()) {
        const lf = this.#lookup(p);
        if (!lf) throw new BundleError(`${this.file}: layer ${p} of ${where} is not in the archive`);
        if (!lf.blob) throw new BundleError(`entry ${lf.name}: listed as a layer of ${where}, but it is not a layer`);
        if (lf.blob.compression === 'zstd' || lf.blob.compression === 'other') throw new BundleError(`entry ${lf.name}: a ${lf.blob.compression === 'zstd' ? 'zstd' : 'bzip2 or xz'}-compressed layer (gzip or uncompressed layers only)`);
        if (!lf.blob.gzipped && lf.blob.compression === 'none') throw new BundleError(`entry ${lf.name}: an uncompressed layer under blobs/ in an archive without index.json`);
        if (lf.unpackedTooLarge !== undefined) throw new BundleError(`entry ${lf.name}: unpacks to more than ${lf.unpackedTooLarge} bytes, an upload's bound for a layer of its size: refused`);
        if (!lf.diffId) throw new BundleError(`entry ${lf.name}: not a valid gzip stream`);
        const want = Digest.tryParse(String(diffIds[j]));
        if (!want || !lf.diffId.equals(want)) throw new BundleError(`entry ${lf.name}: its content does not match diff_id ${j + 1} of ${cf.name} (${String(diffIds[j])}); it unpacks to ${lf.diffId.toString()}`);
        this.#out.blobs.set(lf.blob.digest.toString(), { digest: lf.blob.digest, size: lf.blob.size, file: lf });
        img.blobs.push(lf.blob.digest);
        layers.push({ mediaType: DOCKER_LAYER_GZIP, size: lf.blob.size, digest: lf.blob.digest.toString() });
      }
      this.#out.blobs.set(cfgDigest.toString(), { digest: cfgDigest, size: cfg.length, bytes: cfg });
      const manifest = { schemaVersion: 2, mediaType: MediaType.DockerManifest, config: { mediaType: DOCKER_CONFIG, size: cfg.length, digest: cfgDigest.toString() }, layers };
      const bytes = Buffer.from(JSON.stringify(manifest, null, 3));
      const d = sha256(bytes);
      this.#out.manifests.set(d.toString(), bytes);
      img.digest = d;
      img.manifests.push(d);
      this.#out.images.push(img);
    }
  }
}
