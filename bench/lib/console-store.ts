/**
 * A store of many repositories for the console case, written directly in the standard layout
 * (storage/paths.ts): every repository has two images (tags v1, v2 and latest), each a manifest,
 * a config and a few layers of a few hundred bytes, one of them shared with other repositories;
 * all digests and sizes are the bytes'. Kept under the temp directory between runs, keyed by
 * its size (writing ~300,000 files is what takes the time, not hashing them).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** One image of the store, for the cases to pull. */
export interface StoredImage { name: string; tag: string; digest: string }

export interface ConsoleStore {
  root: string;
  repositories: number;
  blobs: number;
  /** Bytes of all blobs. */
  bytes: number;
  /** An image in the middle of the store. */
  sample: StoredImage;
  /** Seconds it took to write; 0 when an earlier run's store was reused. */
  seconds: number;
}

/** Raised when the layout changes, so that no older cached store is reused. */
const LAYOUT_VERSION = 1;
const IMAGES_PER_REPO = 2;
/** Base layers shared by many repositories (as `FROM debian` is). */
const SHARED_LAYERS = 100;
const WRITERS = 64;

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar';

/** Name of repository `r`: a hundred organisations, five-digit numbers (`q=service-01` finds a tenth). */
export function repoName(r: number): string {
  return `org${r % 100}/service-${String(r).padStart(5, '0')}`;
}

/** The store with `repositories` repositories and `blobs` blobs in all: reused when cached, else written. */
export async function consoleStore(repositories: number, blobs: number): Promise<ConsoleStore> {
  const images = repositories * IMAGES_PER_REPO;
  if (blobs < 2 * images + SHARED_LAYERS) throw new Error(`bench: ${blobs} blobs are too few for ${repositories} repositories`);
  const dir = path.join(os.tmpdir(), `airlock-bench-console-v${LAYOUT_VERSION}-r${repositories}-b${blobs}`);
  const done = path.join(dir, 'complete.json');
  if (existsSync(done)) {
    const meta = JSON.parse(await readFile(done, 'utf8')) as Omit<ConsoleStore, 'seconds'>;
    // What a run's servers wrote (access times, pins, the console's own files) goes: each run starts alike.
    await rm(path.join(meta.root, '.airlock'), { recursive: true, force: true });
    return { ...meta, seconds: 0 };
  }
  const t0 = process.hrtime.bigint();
  await rm(dir, { recursive: true, force: true });
  const root = path.join(dir, 'store');
  const v2 = path.join(root, 'docker/registry/v2');
  const blobRoot = path.join(v2, 'blobs/sha256');
  await mkdir(blobRoot, { recursive: true });
  await Promise.all(Array.from({ length: 256 }, (_, i) => mkdir(path.join(blobRoot, i.toString(16).padStart(2, '0')))));

  let bytes = 0;
  const putBlob = async (data: Buffer): Promise<string> => {
    const hex = createHash('sha256').update(data).digest('hex');
    const d = path.join(blobRoot, hex.slice(0, 2), hex);
    await mkdir(d);
    await writeFile(path.join(d, 'data'), data);
    bytes += data.length;
    return `sha256:${hex}`;
  };
  // Random bytes make every layer unique; sizes from 200 to ~900 bytes so repositories differ in size.
  const layer = (i: number) => randomBytes(200 + ((i * 7919) % 700));

  const shared = await pool(Array.from({ length: SHARED_LAYERS }, (_, i) => () => putBlob(layer(i))));
  const sharedSizes = Array.from({ length: SHARED_LAYERS }, (_, i) => 200 + ((i * 7919) % 700));
  // Every blob that is not a manifest, a config or a shared layer is a layer of one image.
  const ownLayers = blobs - 2 * images - SHARED_LAYERS;
  const perImage = Math.ceil(ownLayers / images);
  let layersLeft = ownLayers;
  let sample: StoredImage | undefined;
  const mid = Math.floor(repositories / 2);

  const writeRepo = async (r: number) => {
    const name = repoName(r);
    const repo = path.join(v2, 'repositories', name);
    const links: Array<[string, string]> = [];
    const digests: string[] = [];
    for (let k = 0; k < IMAGES_PER_REPO; k++) {
      const docker = (r + k) % 2 === 0;
      const n = Math.min(perImage, layersLeft);
      layersLeft -= n;
      const sharedIndex = (r * 31 + k) % SHARED_LAYERS;
      const own = await Promise.all(Array.from({ length: n }, (_, j) => {
        const data = layer(r * 13 + k * 5 + j);
        return putBlob(data).then((digest) => ({ digest, size: data.length }));
      }));
      const layers = [{ digest: shared[sharedIndex]!, size: sharedSizes[sharedIndex]! }, ...own];
      const config = Buffer.from(JSON.stringify({
        created: new Date(Date.UTC(2026, 0, 1) + r * 60_000 + k * 1000).toISOString(),
        architecture: 'amd64',
        os: 'linux',
        config: { Env: ['PATH=/usr/local/bin:/usr/bin:/bin', `SERVICE=${name}`], Cmd: ['/bin/service'], Labels: { 'org.opencontainers.image.version': `${k + 1}.0.0` } },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      }));
      const configDigest = await putBlob(config);
      const manifest = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: docker ? DOCKER_MANIFEST : OCI_MANIFEST,
        config: { mediaType: docker ? DOCKER_CONFIG : OCI_CONFIG, digest: configDigest, size: config.length },
        layers: layers.map((l) => ({ mediaType: docker ? DOCKER_LAYER : OCI_LAYER, digest: l.digest, size: l.size })),
      }));
      const digest = await putBlob(manifest);
      digests.push(digest);
      for (const d of [configDigest, ...layers.map((l) => l.digest)]) links.push([`_layers/sha256/${d.slice(7)}/link`, d]);
      links.push([`_manifests/revisions/sha256/${digest.slice(7)}/link`, digest]);
    }
    const tags: Array<[string, string]> = [['v1', digests[0]!], ['v2', digests[1]!], ['latest', digests[1]!]];
    for (const [tag, d] of tags) {
      links.push([`_manifests/tags/${tag}/current/link`, d]);
      links.push([`_manifests/tags/${tag}/index/sha256/${d.slice(7)}/link`, d]);
    }
    // Each link's directory once, then the links, written together.
    const dirs = new Set(links.map(([p]) => path.dirname(path.join(repo, p))));
    await Promise.all([...dirs].map((d) => mkdir(d, { recursive: true })));
    await Promise.all(links.map(([p, d]) => writeFile(path.join(repo, p), d)));
    if (r === mid) sample = { name, tag: 'v1', digest: digests[0]! };
  };
  // Layers are taken from `layersLeft` in repository order, so the repositories are written in
  // order of their first await: batches of WRITERS keep that order and the disk busy.
  await pool(Array.from({ length: repositories }, (_, r) => () => writeRepo(r)));

  const meta = { root, repositories, blobs, bytes, sample: sample! };
  await writeFile(done, `${JSON.stringify(meta, null, 2)}\n`);
  return { ...meta, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

/** Runs `tasks` WRITERS at a time; their results in order. */
async function pool<T>(tasks: Array<() => Promise<T>>): Promise<T[]> {
  const out: T[] = new Array<T>(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(WRITERS, tasks.length) }, worker));
  return out;
}
