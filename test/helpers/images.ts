/**
 * Test images, generated with no network: random (incompressible) layers as real uncompressed
 * tar archives, valid image configs, OCI or Docker schema2 manifests, OCI indexes and Docker
 * manifest lists, written as an OCI image layout that `skopeo copy --all --preserve-digests`
 * pushes without changing a byte.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

export type ImageFormat = 'oci' | 'docker';
export interface Platform { os: string; architecture: string; variant?: string }
export interface BlobInfo { digest: string; size: number; mediaType: string }

export interface GeneratedImage {
  /** skopeo source, e.g. `oci:/tmp/x:tag`. */
  source: string;
  layout: string;
  tag: string;
  manifestDigest: string;
  mediaType: string;
  manifestBytes: Buffer;
  /** Config and layers of this image (and of every child for an index). */
  blobs: BlobInfo[];
  children: GeneratedImage[];
  /** Sum of blob and manifest sizes: what a full pull transfers. */
  totalBytes: number;
}

const TYPES = {
  oci: {
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    index: 'application/vnd.oci.image.index.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layer: 'application/vnd.oci.image.layer.v1.tar',
  },
  docker: {
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layer: 'application/vnd.docker.image.rootfs.diff.tar',
  },
} as const;

function sha256(b: Uint8Array): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** A ustar header for one regular file. */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512, 0);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100, 8, 'ascii');
  h.write('0000000\0', 108, 8, 'ascii');
  h.write('0000000\0', 116, 8, 'ascii');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 12, 'ascii');
  h.write(`${Math.floor(Date.now() / 1000).toString(8).padStart(11, '0')}\0`, 136, 12, 'ascii');
  h.write('        ', 148, 8, 'ascii');
  h.write('0', 156, 1, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return h;
}

/**
 * OCI media types go into an OCI image layout (skopeo's `oci:` transport); Docker media types
 * into skopeo's `dir:` layout (blobs named by hex, `manifest.json`, and `<hex>.manifest.json`
 * for each instance of a list), because the `oci:` transport ignores non-OCI descriptors.
 */
export class OciLayout {
  constructor(readonly dir: string, readonly kind: 'oci' | 'dir' = 'oci') {}

  async init(): Promise<void> {
    if (this.kind === 'dir') {
      await mkdir(this.dir, { recursive: true });
      await writeFile(path.join(this.dir, 'version'), 'Directory Transport Version: 1.1\n');
      return;
    }
    await mkdir(path.join(this.dir, 'blobs/sha256'), { recursive: true });
    await writeFile(path.join(this.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  }

  blobPath(digest: string): string {
    return this.kind === 'dir' ? path.join(this.dir, digest.slice(7)) : path.join(this.dir, 'blobs/sha256', digest.slice(7));
  }

  async addBytes(bytes: Buffer, mediaType: string): Promise<BlobInfo> {
    const digest = sha256(bytes);
    await writeFile(this.blobPath(digest), bytes);
    return { digest, size: bytes.length, mediaType };
  }

  /** For dir layouts: a manifest of a list instance, or the top-level manifest. */
  async addManifest(bytes: Buffer, mediaType: string, top: boolean): Promise<BlobInfo> {
    if (this.kind === 'oci') return this.addBytes(bytes, mediaType);
    const digest = sha256(bytes);
    await writeFile(path.join(this.dir, top ? 'manifest.json' : `${digest.slice(7)}.manifest.json`), bytes);
    return { digest, size: bytes.length, mediaType };
  }

  /** A tar layer holding one file of `size` random bytes, streamed to disk (sizes of GiBs are fine). */
  async addRandomLayer(size: number, mediaType: string): Promise<BlobInfo> {
    const tmp = path.join(this.dir, `tmp-${randomBytes(6).toString('hex')}`);
    const out = createWriteStream(tmp);
    const hash = createHash('sha256');
    let total = 0;
    const put = async (b: Buffer) => {
      hash.update(b);
      total += b.length;
      if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
    };
    await put(tarHeader(`data-${randomBytes(4).toString('hex')}.bin`, size));
    for (let done = 0; done < size; done += 4 << 20) await put(randomBytes(Math.min(4 << 20, size - done)));
    const pad = (512 - (size % 512)) % 512;
    await put(Buffer.alloc(pad + 1024, 0));
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
    const digest = `sha256:${hash.digest('hex')}`;
    await rename(tmp, this.blobPath(digest));
    return { digest, size: total, mediaType };
  }

  /** Adds (or replaces) a tagged entry in index.json. */
  async tag(tag: string, d: BlobInfo, platform?: Platform): Promise<void> {
    if (this.kind === 'dir') return;
    const file = path.join(this.dir, 'index.json');
    let index: { schemaVersion: number; manifests: Array<Record<string, unknown>> };
    try {
      index = JSON.parse(await readFile(file, 'utf8')) as typeof index;
    } catch {
      index = { schemaVersion: 2, manifests: [] };
    }
    index.manifests = index.manifests.filter((m) => (m.annotations as Record<string, string> | undefined)?.['org.opencontainers.image.ref.name'] !== tag);
    index.manifests.push({ mediaType: d.mediaType, digest: d.digest, size: d.size, ...(platform ? { platform } : {}), annotations: { 'org.opencontainers.image.ref.name': tag } });
    await writeFile(file, JSON.stringify(index));
  }
}

async function layoutFor(dir: string, format: ImageFormat): Promise<OciLayout> {
  const l = new OciLayout(dir, format === 'oci' ? 'oci' : 'dir');
  await l.init();
  return l;
}

interface ImageOpts {
  layers: number;
  layerSize: number;
  format: ImageFormat;
  platform?: Platform;
  tag?: string;
}

async function buildImage(layout: OciLayout, opts: ImageOpts, top: boolean): Promise<{ manifest: BlobInfo; bytes: Buffer; blobs: BlobInfo[] }> {
  const t = TYPES[opts.format];
  const layers: BlobInfo[] = [];
  for (let i = 0; i < opts.layers; i++) layers.push(await layout.addRandomLayer(opts.layerSize, t.layer));
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const config = Buffer.from(JSON.stringify({
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    created: new Date().toISOString(),
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/true'], Labels: { 'airlock.test': randomBytes(8).toString('hex') } },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    history: layers.map(() => ({ created_by: 'airlock test generator' })),
  }));
  const cfg = await layout.addBytes(config, t.config);
  const manifest = {
    schemaVersion: 2,
    mediaType: t.manifest,
    config: { mediaType: cfg.mediaType, digest: cfg.digest, size: cfg.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const bytes = Buffer.from(JSON.stringify(manifest, null, 3));
  const m = await layout.addManifest(bytes, t.manifest, top);
  return { manifest: m, bytes, blobs: [cfg, ...layers] };
}

function imageOf(layout: OciLayout, source: string, tag: string, built: { manifest: BlobInfo; bytes: Buffer; blobs: BlobInfo[] }): GeneratedImage {
  return {
    source,
    layout: layout.dir,
    tag,
    manifestDigest: built.manifest.digest,
    mediaType: built.manifest.mediaType,
    manifestBytes: built.bytes,
    blobs: built.blobs,
    children: [],
    totalBytes: built.bytes.length + built.blobs.reduce((s, b) => s + b.size, 0),
  };
}

/** One image (OCI or Docker schema2), tagged `tag` in a layout at `dir`. */
export async function generateImage(dir: string, opts: ImageOpts): Promise<GeneratedImage> {
  const layout = await layoutFor(dir, opts.format);
  const tag = opts.tag ?? 'latest';
  const built = await buildImage(layout, opts, true);
  await layout.tag(tag, built.manifest);
  return imageOf(layout, layout.kind === 'oci' ? `oci:${dir}:${tag}` : `dir:${dir}`, tag, built);
}

/** A multi-platform OCI index or Docker manifest list with one image per platform. */
export async function generateIndex(dir: string, opts: { platforms: Platform[]; layers: number; layerSize: number; format: ImageFormat; tag?: string }): Promise<GeneratedImage> {
  const layout = await layoutFor(dir, opts.format);
  const tag = opts.tag ?? 'latest';
  const children: GeneratedImage[] = [];
  const entries: Array<Record<string, unknown>> = [];
  for (const platform of opts.platforms) {
    const built = await buildImage(layout, { ...opts, platform }, false);
    children.push(imageOf(layout, layout.kind === 'oci' ? `oci:${dir}@${built.manifest.digest}` : `dir:${dir}`, tag, built));
    entries.push({ mediaType: built.manifest.mediaType, digest: built.manifest.digest, size: built.manifest.size, platform });
  }
  const t = TYPES[opts.format];
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: t.index, manifests: entries }, null, 3));
  const index = await layout.addManifest(bytes, t.index, true);
  await layout.tag(tag, index);
  return {
    source: layout.kind === 'oci' ? `oci:${dir}:${tag}` : `dir:${dir}`,
    layout: dir,
    tag,
    manifestDigest: index.digest,
    mediaType: index.mediaType,
    manifestBytes: bytes,
    blobs: children.flatMap((c) => c.blobs),
    children,
    totalBytes: bytes.length + children.reduce((s, c) => s + c.totalBytes, 0),
  };
}
