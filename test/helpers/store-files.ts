/** Where the standard layout keeps things on disk, for tests that check bytes in the store. */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

/** The data file of blob `digest` (sha256:…) under a store root. */
export function blobFile(root: string, digest: string): string {
  return path.join(root, 'docker/registry/v2/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data');
}

export function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

/**
 * Every file under the store's layout with its sha256 ({} when there is none): what "the store is
 * as it was" compares.
 */
export async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out[path.relative(root, p)] = createHash('sha256').update(await readFile(p)).digest('hex');
    }
  };
  await walk(path.join(root, 'docker'));
  return out;
}

/** The smallest valid OCI image manifest, a different one for each `n` (its config digest spells n). */
export function tinyManifest(n: number): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${String(n).padStart(64, '0')}`, size: 2 },
    layers: [],
  }));
}

/** Store options for unit tests: manifests up to 1 MiB, 1 MiB of them remembered. */
export const TEST_STORE_OPTIONS = { maxManifestSize: 1 << 20, manifestCacheBytes: 1 << 20 };
