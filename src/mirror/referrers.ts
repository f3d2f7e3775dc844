import type { Digest } from '../oci/digest.js';
import { parseManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/media-types.js';
import type { Store } from '../storage/store.js';

/**
 * The referrers API (OCI distribution-spec 1.1 "Listing Referrers"): an OCI index of the
 * repository's manifests whose `subject` is `digest`, optionally only those of one artifactType.
 * Found by reading the repository's manifests (kept in memory by digest), so referrers pushed by
 * any means, imported or mirrored are all listed.
 */
export async function referrersIndex(store: Store, storeName: string, digest: Digest, artifactType?: string): Promise<Buffer> {
  const manifests: Array<Record<string, unknown>> = [];
  for (const d of await store.links.revisions(storeName)) {
    const stored = await store.blobs.readManifest(d).catch(() => undefined);
    if (!stored) continue;
    let m;
    try {
      m = parseManifest(stored.bytes);
    } catch {
      continue;
    }
    if (!m.subject?.digest.equals(digest)) continue;
    // The spec: the manifest's artifactType, else its config's media type.
    const type = m.artifactType ?? m.config?.mediaType;
    if (artifactType !== undefined && type !== artifactType) continue;
    manifests.push({
      mediaType: m.mediaType,
      digest: d.toString(),
      size: stored.bytes.byteLength,
      ...(type ? { artifactType: type } : {}),
      ...(m.annotations ? { annotations: m.annotations } : {}),
    });
  }
  manifests.sort((a, b) => String(a.digest).localeCompare(String(b.digest)));
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }));
}
